// Package ocsfschema holds the rules of an OCSF schema release that
// Trail's OCSF output is held to: written by export/internal/ocsfrules
// (compiled from the schema's own files) into
// export/testdata/ocsf-1.3.0.rules.json, read (Load) and applied
// (Rules.Validate) by the tests of the export and of the OCSF streams.
package ocsfschema

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"sort"
	"strings"
)

// Rules is the compiled file.
type Rules struct {
	Version string            `json:"version"`
	Classes map[string]*Shape `json:"classes"`
	Objects map[string]*Shape `json:"objects"`
}

// Shape is a class or an object: its attributes and constraints.
type Shape struct {
	Name       string           `json:"name"`
	Attrs      map[string]*Attr `json:"attributes"`
	AtLeastOne []string         `json:"at_least_one,omitempty"`
	JustOne    []string         `json:"just_one,omitempty"`
}

// Attr is one attribute: its requirement (required, recommended,
// optional), its base type (string_t, integer_t, long_t, float_t,
// boolean_t, json_t) or object (the object's name), whether it is an
// array, and its enum's values, when it has one.
type Attr struct {
	Requirement string   `json:"requirement"`
	Type        string   `json:"type,omitempty"`
	Object      string   `json:"object,omitempty"`
	Array       bool     `json:"array,omitempty"`
	Profile     string   `json:"profile,omitempty"` // required only when the event applies this profile
	Enum        []string `json:"enum,omitempty"`
}

// Load reads the rules compiled into file and checks they are of OCSF
// version.
func Load(file, version string) (*Rules, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	var r Rules
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("ocsfschema: %s: %w", file, err)
	}
	if r.Version != version {
		return nil, fmt.Errorf("ocsfschema: %s holds the rules of OCSF %s, not %s", file, r.Version, version)
	}
	return &r, nil
}

// Validate returns what is wrong with an encoded OCSF event, by path.
func (r *Rules) Validate(event []byte) []string {
	var v map[string]any
	d := json.NewDecoder(bytes.NewReader(event))
	d.UseNumber()
	if err := d.Decode(&v); err != nil {
		return []string{err.Error()}
	}
	uid := fmt.Sprint(v["class_uid"])
	class := r.Classes[uid]
	if class == nil {
		return []string{"class_uid " + uid + ": not a class the rules know"}
	}
	profiles := map[string]bool{}
	if md, ok := v["metadata"].(map[string]any); ok {
		if ps, ok := md["profiles"].([]any); ok {
			for _, p := range ps {
				profiles[fmt.Sprint(p)] = true
			}
		}
	}
	var errs []string
	r.check(&errs, "", v, class, profiles)
	sort.Strings(errs)
	return errs
}

func (r *Rules) check(errs *[]string, path string, v map[string]any, s *Shape, profiles map[string]bool) {
	fail := func(format string, args ...any) { *errs = append(*errs, fmt.Sprintf(format, args...)) }
	for name, val := range v {
		a := s.Attrs[name]
		if a == nil {
			fail("%s%s: not an attribute of %s", path, name, s.Name)
			continue
		}
		r.value(errs, path+name, val, a, profiles)
	}
	for name, a := range s.Attrs {
		if a.Requirement == "required" && (a.Profile == "" || profiles[a.Profile]) && v[name] == nil {
			fail("%s%s: required by %s", path, name, s.Name)
		}
	}
	count := func(names []string) int {
		n := 0
		for _, name := range names {
			if v[name] != nil {
				n++
			}
		}
		return n
	}
	if len(s.AtLeastOne) > 0 && count(s.AtLeastOne) == 0 {
		fail("%s: %s needs at least one of %v", strings.TrimSuffix(path, "."), s.Name, s.AtLeastOne)
	}
	if len(s.JustOne) > 0 && count(s.JustOne) != 1 {
		fail("%s: %s needs just one of %v", strings.TrimSuffix(path, "."), s.Name, s.JustOne)
	}
}

func (r *Rules) value(errs *[]string, path string, val any, a *Attr, profiles map[string]bool) {
	fail := func(format string, args ...any) { *errs = append(*errs, path+": "+fmt.Sprintf(format, args...)) }
	if a.Array {
		list, ok := val.([]any)
		if !ok {
			fail("want an array")
			return
		}
		one := *a
		one.Array = false
		for i, el := range list {
			r.value(errs, fmt.Sprintf("%s[%d]", path, i), el, &one, profiles)
		}
		return
	}
	if a.Object != "" {
		obj, ok := val.(map[string]any)
		if !ok {
			fail("want a %s object", a.Object)
			return
		}
		if a.Object == "object" { // OCSF's open object (unmapped)
			return
		}
		s := r.Objects[a.Object]
		if s == nil {
			fail("object %s is not in the rules", a.Object)
			return
		}
		r.check(errs, path+".", obj, s, profiles)
		return
	}
	switch a.Type {
	case "string_t":
		if _, ok := val.(string); !ok {
			fail("want a string, have %v", val)
		}
	case "integer_t", "long_t":
		if n, ok := val.(json.Number); !ok || strings.ContainsAny(n.String(), ".eE") {
			fail("want an integer, have %v", val)
		}
	case "float_t":
		if _, ok := val.(json.Number); !ok {
			fail("want a number, have %v", val)
		}
	case "boolean_t":
		if _, ok := val.(bool); !ok {
			fail("want a boolean, have %v", val)
		}
	}
	if len(a.Enum) > 0 && !slices.Contains(a.Enum, fmt.Sprint(val)) {
		fail("%v is not one of %v", val, a.Enum)
	}
}
