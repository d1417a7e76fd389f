package config

import (
	"errors"
	"fmt"
	"reflect"
	"sort"
	"strings"

	"go.yaml.in/yaml/v3"
)

// checkSchema walks the parsed file beside the Config type and reports every
// unknown key and every value of the wrong shape, each as
// "line N: key.path: problem". The keys valid at each path are read from the
// yaml struct tags, so the check follows the schema without a list to keep
// in step.
func checkSchema(root *yaml.Node) error {
	n := root
	if n.Kind == yaml.DocumentNode {
		if len(n.Content) == 0 {
			return nil // an empty file
		}
		n = n.Content[0]
	}
	var errs []error
	walkSchema(n, reflect.TypeFor[Config](), nil, func(at *yaml.Node, path []any, msg string) {
		where := pathString(path)
		if where == "" {
			where = "the file"
		}
		errs = append(errs, fmt.Errorf("line %d: %s: %s", at.Line, where, msg))
	})
	return errors.Join(errs...)
}

var unmarshalerType = reflect.TypeFor[yaml.Unmarshaler]()

type schemaReport func(at *yaml.Node, path []any, msg string)

func walkSchema(n *yaml.Node, t reflect.Type, path []any, report schemaReport) {
	if n.Kind == yaml.AliasNode {
		if n.Alias == nil {
			return
		}
		n = n.Alias
	}
	if n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
		return // "key:" with nothing after it leaves the default
	}
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if reflect.PointerTo(t).Implements(unmarshalerType) {
		if err := n.Decode(reflect.New(t).Interface()); err != nil {
			report(n, path, err.Error())
		}
		return
	}
	switch t.Kind() {
	case reflect.Struct:
		if n.Kind != yaml.MappingNode {
			report(n, path, "want a mapping of keys, got "+shapeOf(n))
			return
		}
		fields := yamlFields(t)
		firstAt := map[string]int{}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			if repeatedKey(k, path, firstAt, report) {
				continue
			}
			if k.Tag == "!!merge" { // "<<: *anchor" merges another mapping's keys
				for _, m := range mergedMappings(v) {
					walkSchema(m, t, path, report)
				}
				continue
			}
			ft, ok := fields[k.Value]
			if !ok {
				report(k, with(path, k.Value), unknownKey(k.Value, fields))
				continue
			}
			walkSchema(v, ft, with(path, k.Value), report)
		}
	case reflect.Map:
		if n.Kind != yaml.MappingNode {
			report(n, path, "want a mapping of keys, got "+shapeOf(n))
			return
		}
		firstAt := map[string]int{}
		for i := 0; i+1 < len(n.Content); i += 2 {
			if repeatedKey(n.Content[i], path, firstAt, report) {
				continue
			}
			walkSchema(n.Content[i+1], t.Elem(), with(path, n.Content[i].Value), report)
		}
	case reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			report(n, path, "want a list, got "+shapeOf(n))
			return
		}
		for i, item := range n.Content {
			walkSchema(item, t.Elem(), with(path, i), report)
		}
	default:
		if n.Kind != yaml.ScalarNode {
			report(n, path, fmt.Sprintf("want %s, got %s", scalarWant(t), shapeOf(n)))
			return
		}
		if err := n.Decode(reflect.New(t).Interface()); err != nil {
			report(n, path, fmt.Sprintf("invalid value %q: want %s", n.Value, scalarWant(t)))
		}
	}
}

// repeatedKey reports a key set a second time in one mapping (the decoder
// would refuse it too, naming only the line).
func repeatedKey(k *yaml.Node, path []any, firstAt map[string]int, report schemaReport) bool {
	if k.Tag == "!!merge" {
		return false
	}
	if line, ok := firstAt[k.Value]; ok {
		report(k, with(path, k.Value), fmt.Sprintf("set twice (first at line %d)", line))
		return true
	}
	firstAt[k.Value] = k.Line
	return false
}

// with returns a new path one step longer; the caller's path is not shared.
func with(path []any, step any) []any {
	return append(path[:len(path):len(path)], step)
}

func mergedMappings(v *yaml.Node) []*yaml.Node {
	if v.Kind == yaml.AliasNode && v.Alias != nil {
		v = v.Alias
	}
	if v.Kind == yaml.SequenceNode {
		return v.Content
	}
	return []*yaml.Node{v}
}

// yamlFields maps the keys a struct accepts to their types, following the
// yaml tags the decoder follows (inline structs included).
func yamlFields(t reflect.Type) map[string]reflect.Type {
	out := map[string]reflect.Type{}
	for i := range t.NumField() {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		name, opts, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if name == "-" {
			continue
		}
		if strings.Contains(","+opts+",", ",inline,") {
			for k, ft := range yamlFields(f.Type) {
				out[k] = ft
			}
			continue
		}
		if name == "" {
			name = strings.ToLower(f.Name)
		}
		out[name] = f.Type
	}
	return out
}

// unknownKey says a key is unknown and suggests the closest valid one, or
// lists the valid ones when none is close.
func unknownKey(key string, fields map[string]reflect.Type) string {
	known := make([]string, 0, len(fields))
	for k := range fields {
		known = append(known, k)
	}
	sort.Strings(known)
	best, bestDist := "", -1
	for _, k := range known {
		if d := editDistance(key, k); bestDist < 0 || d < bestDist {
			best, bestDist = k, d
		}
	}
	// Close enough to be a typo: a few edits, fewer than a third of the key.
	if bestDist >= 0 && bestDist <= max(2, len(best)/3) && bestDist < len(best) {
		return fmt.Sprintf("unknown key (did you mean %s?)", best)
	}
	return fmt.Sprintf("unknown key (valid here: %s)", strings.Join(known, ", "))
}

// editDistance is the Levenshtein distance between a and b, in bytes.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

func shapeOf(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	default:
		return fmt.Sprintf("%q", n.Value)
	}
}

func scalarWant(t reflect.Type) string {
	switch t.Kind() {
	case reflect.Bool:
		return "true or false"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "a whole number"
	case reflect.String:
		return "a string"
	}
	return "a " + t.Kind().String()
}
