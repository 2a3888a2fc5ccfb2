// Command ocsfrules compiles, from a checkout of the OCSF schema
// (github.com/ocsf/ocsf-schema at a release tag), the rules the OCSF
// export's tests hold its output to: for each event class Trail maps to,
// and each object those classes reach, every attribute allowed with its
// requirement, base type and enum, and the class's constraints
// (at_least_one, just_one). Inheritance (extends), $include and profiles
// are resolved the way the schema server resolves them.
//
//	git clone --branch 1.3.0 https://github.com/ocsf/ocsf-schema /tmp/ocsf-schema
//	go run ./export/internal/ocsfrules -schema /tmp/ocsf-schema > export/testdata/ocsf-1.3.0.rules.json
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/trailaudit/trail/internal/ocsfschema"
)

// The classes the export writes, by class_uid, and their files.
var classes = map[string]string{
	"3001": "events/iam/account_change.json",
	"3002": "events/iam/authentication.json",
	"3004": "events/iam/entity_management.json",
	"6003": "events/application/api.json",
}

type file struct {
	Name        string                     `json:"name"`
	Extends     string                     `json:"extends"`
	Profiles    []string                   `json:"profiles"`
	Attributes  map[string]json.RawMessage `json:"attributes"`
	Constraints map[string][]string        `json:"constraints"`
}

type compiler struct {
	root    string
	dict    map[string]map[string]any
	types   map[string]map[string]any
	objects map[string]*ocsfschema.Shape
}

func main() {
	schema := flag.String("schema", "", "the OCSF schema checkout")
	flag.Parse()
	if err := run(*schema); err != nil {
		fmt.Fprintln(os.Stderr, "ocsfrules:", err)
		os.Exit(1)
	}
}

func run(root string) error {
	c := &compiler{root: root, objects: map[string]*ocsfschema.Shape{}}
	var dict struct {
		Attributes map[string]map[string]any `json:"attributes"`
		Types      struct {
			Attributes map[string]map[string]any `json:"attributes"`
		} `json:"types"`
	}
	if err := c.read("dictionary.json", &dict); err != nil {
		return err
	}
	c.dict, c.types = dict.Attributes, dict.Types.Attributes
	var version struct {
		Version string `json:"version"`
	}
	if err := c.read("version.json", &version); err != nil {
		return err
	}
	out := ocsfschema.Rules{Version: version.Version, Classes: map[string]*ocsfschema.Shape{}}
	for uid, path := range classes {
		s, err := c.shape(path, "events")
		if err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
		out.Classes[uid] = s
	}
	out.Objects = c.objects
	enc := json.NewEncoder(os.Stdout)
	enc.SetIndent("", " ")
	return enc.Encode(out)
}

func (c *compiler) read(path string, v any) error {
	b, err := os.ReadFile(filepath.Join(c.root, path))
	if err != nil {
		return err
	}
	return json.Unmarshal(b, v)
}

// shape compiles the class or object in path (kind: "events" or
// "objects", where its parents are found).
func (c *compiler) shape(path, kind string) (*ocsfschema.Shape, error) {
	attrs := map[string]map[string]any{}
	s := &ocsfschema.Shape{}
	var walk func(path string, own bool) error
	walk = func(path string, own bool) error {
		var f file
		if err := c.read(path, &f); err != nil {
			return err
		}
		if own {
			s.Name = f.Name
		}
		if f.Extends != "" && f.Extends != "object" {
			parent, err := c.find(kind, f.Extends)
			if err != nil {
				return err
			}
			if err := walk(parent, false); err != nil {
				return err
			}
		}
		for _, p := range f.Profiles {
			if err := c.merge(attrs, "profiles/"+p+".json", p); err != nil {
				return err
			}
		}
		if err := c.mergeAttrs(attrs, f.Attributes, ""); err != nil {
			return err
		}
		if v := f.Constraints["at_least_one"]; v != nil {
			s.AtLeastOne = v
		}
		if v := f.Constraints["just_one"]; v != nil {
			s.JustOne = v
		}
		return nil
	}
	if err := walk(path, true); err != nil {
		return nil, err
	}
	s.Attrs = map[string]*ocsfschema.Attr{}
	for _, name := range slices.Sorted(maps.Keys(attrs)) {
		a, err := c.attr(name, attrs[name])
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		s.Attrs[name] = a
	}
	return s, nil
}

// find returns the file of the class or object named name.
func (c *compiler) find(kind, name string) (string, error) {
	var found string
	err := filepath.WalkDir(filepath.Join(c.root, kind), func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(p, ".json") || found != "" {
			return err
		}
		var f file
		b, err := os.ReadFile(p)
		if err == nil && json.Unmarshal(b, &f) == nil && f.Name == name {
			found, _ = filepath.Rel(c.root, p)
		}
		return nil
	})
	if err == nil && found == "" {
		err = fmt.Errorf("no %s named %q", kind, name)
	}
	return found, err
}

// merge adds the attributes of an include or profile file.
func (c *compiler) merge(attrs map[string]map[string]any, path, profile string) error {
	var f file
	if err := c.read(path, &f); err != nil {
		return err
	}
	return c.mergeAttrs(attrs, f.Attributes, profile)
}

// mergeAttrs merges raw attributes into attrs: each attribute's keys
// override those set before, except a profile's (a profile adds
// attributes, required only where it is applied; it does not change those
// a class defines).
func (c *compiler) mergeAttrs(attrs map[string]map[string]any, raw map[string]json.RawMessage, profile string) error {
	if inc, ok := raw["$include"]; ok {
		var paths []string
		if err := json.Unmarshal(inc, &paths); err != nil {
			return err
		}
		for _, p := range paths {
			prof := profile
			if name, ok := strings.CutPrefix(p, "profiles/"); ok { // a profile included by path
				prof = strings.TrimSuffix(name, ".json")
			}
			if err := c.merge(attrs, p, prof); err != nil {
				return err
			}
		}
	}
	for name, r := range raw {
		if name == "$include" {
			continue
		}
		var def map[string]any
		if err := json.Unmarshal(r, &def); err != nil {
			return err
		}
		if attrs[name] == nil {
			attrs[name] = map[string]any{}
			if profile != "" {
				attrs[name]["$profile"] = profile
			}
		} else if profile != "" {
			continue
		} else {
			delete(attrs[name], "$profile") // the class defines it itself
		}
		mergeDef(attrs[name], def)
	}
	return nil
}

// mergeDef copies def's keys into dst; enums are merged, not replaced (a
// class adds its activities to the dictionary's Unknown and Other).
func mergeDef(dst, def map[string]any) {
	for k, v := range def {
		old, ok1 := dst[k].(map[string]any)
		add, ok2 := v.(map[string]any)
		if k == "enum" && ok1 && ok2 {
			merged := maps.Clone(old)
			maps.Copy(merged, add)
			dst[k] = merged
			continue
		}
		dst[k] = v
	}
}

// attr resolves one attribute against the dictionary: its type, and for
// an object its shape (compiled once).
func (c *compiler) attr(name string, def map[string]any) (*ocsfschema.Attr, error) {
	d := map[string]any{}
	mergeDef(d, c.dict[name])
	mergeDef(d, def)
	a := &ocsfschema.Attr{Requirement: str(d["requirement"]), Array: d["is_array"] == true, Profile: str(d["$profile"])}
	if a.Requirement == "" {
		a.Requirement = "optional"
	}
	// The uids of the class itself are the schema's to give (the class's
	// own, not base_event's 0): the tests check them against the class.
	if e, ok := d["enum"].(map[string]any); ok && name != "class_uid" && name != "category_uid" && name != "type_uid" {
		a.Enum = slices.Sorted(maps.Keys(e))
	}
	t := str(d["type"])
	if t == "" {
		return nil, fmt.Errorf("no type")
	}
	if strings.HasSuffix(t, "_t") {
		for c.types[t] != nil && str(c.types[t]["type"]) != "" {
			t = str(c.types[t]["type"])
		}
		a.Type = t
		return a, nil
	}
	a.Object = t
	if _, ok := c.objects[t]; !ok {
		c.objects[t] = nil // compiling: objects may refer to themselves
		path, err := c.find("objects", t)
		if err != nil {
			return nil, err
		}
		s, err := c.shape(path, "objects")
		if err != nil {
			return nil, fmt.Errorf("object %s: %w", t, err)
		}
		c.objects[t] = s
	}
	return a, nil
}

func str(v any) string {
	s, _ := v.(string)
	return s
}
