package main

import (
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	for _, tc := range []struct {
		in, err string
		n       int
	}{
		{"# size rate\n10000 3937\n\n100000 2821\n", "", 2},
		{"10000 1\n", "at least two", 0},
		{"10000 1\n5000 2\n", "ascending", 0},
		{"0 1\n10 2\n", "positive x", 0},
		{"10 1 2\n", `want "x y"`, 0},
	} {
		pts, err := parse(strings.NewReader(tc.in))
		if tc.err == "" && (err != nil || len(pts) != tc.n) {
			t.Errorf("parse(%q) = %d points, %v; want %d", tc.in, len(pts), err, tc.n)
		}
		if tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)) {
			t.Errorf("parse(%q): err %v, want one saying %s", tc.in, err, tc.err)
		}
	}
}

func TestDraw(t *testing.T) {
	var b strings.Builder
	if err := draw(&b, "append <events/s>", []point{{1e4, 4000}, {1e5, 2000}, {1e6, 0.67}}); err != nil {
		t.Fatal(err)
	}
	svg := b.String()
	for _, want := range []string{"<svg ", "append &lt;events/s&gt;", ">10k<", ">100k<", ">1M<", ">4000<", ">0.67<", "</svg>"} {
		if !strings.Contains(svg, want) {
			t.Errorf("svg lacks %q:\n%s", want, svg)
		}
	}
	if strings.Count(svg, "<circle") != 3 {
		t.Errorf("want 3 points:\n%s", svg)
	}
}
