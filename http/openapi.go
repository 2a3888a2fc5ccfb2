package http

import (
	_ "embed"
	"net/http"
)

// openapiDoc is the API's OpenAPI 3.1 description. A test holds it to the
// routes the server answers, both ways.
//
//go:embed openapi.json
var openapiDoc []byte

func (s *Server) openapi(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	w.Write(openapiDoc)
}
