//go:build ignore

// gen_main.go regenerates actions_gen.go from actions.json. Run it with
// `go generate ./catalog`.
package main

import (
	"log"
	"os"

	"github.com/trailaudit/trail/catalog/internal/gen"
)

func main() {
	data, err := os.ReadFile("actions.json")
	if err != nil {
		log.Fatal(err)
	}
	src, err := gen.Source(data)
	if err != nil {
		log.Fatal(err)
	}
	if err := os.WriteFile("actions_gen.go", src, 0o644); err != nil {
		log.Fatal(err)
	}
}
