// Package yamlx is the one strict YAML decoder of mcpguard: the config file, policy files and
// policy test cases are decoded by it, so every file reports its problems the same way: all at
// once, each with its path in the document and its line. It is a pure leaf (std and yaml.v3).
package yamlx

import (
	"encoding"
	"errors"
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// Decode decodes data onto v (a pointer to a struct that already holds the defaults).
// yaml.v3's KnownFields mode also collects type errors, but names each by line and Go type
// ("line 7: field audiense not found in type authz.Issuer"); this decoder names every
// problem by its path in the document and its line (auth.issuers[0].audiense: unknown field
// (line 7)), refuses duplicate keys at every level, takes durations and byte sizes in their
// written forms, and never lets an explicit null clear a default. It returns the line of
// every path the document sets, so later validation errors can point at their line too.
// yaml.Node fields take the node as written (policy conditions, messages in policy cases).
func Decode(data []byte, v any) (map[string]int, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("yaml: %w", err)
	}
	d := &decoder{lines: map[string]int{}}
	if doc.Kind == 0 { // empty document: defaults stand
		return d.lines, nil
	}
	d.value(&doc, reflect.ValueOf(v).Elem(), "")
	return d.lines, errors.Join(d.errs...)
}

type decoder struct {
	errs  []error
	lines map[string]int // path in the document → line of its key (or list element)
}

func (d *decoder) fail(n *yaml.Node, path, format string, args ...any) {
	if path == "" {
		path = "(document)"
	}
	d.errs = append(d.errs, fmt.Errorf("%s: %s (line %d)", path, fmt.Sprintf(format, args...), n.Line))
}

var (
	nodeType            = reflect.TypeFor[yaml.Node]()
	durationType        = reflect.TypeFor[time.Duration]()
	textUnmarshalerType = reflect.TypeFor[encoding.TextUnmarshaler]()
)

func (d *decoder) value(n *yaml.Node, v reflect.Value, path string) {
	switch n.Kind {
	case yaml.DocumentNode:
		if len(n.Content) == 0 {
			return
		}
		d.value(n.Content[0], v, path)
		return
	case yaml.AliasNode:
		d.value(n.Alias, v, path)
		return
	case yaml.ScalarNode, yaml.SequenceNode, yaml.MappingNode:
		// decoded below against the target's type
	}
	if n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
		// An explicit null keeps the default; it never clears a required field silently
		// because Validate runs afterwards.
		return
	}
	if v.Kind() == reflect.Pointer {
		if v.IsNil() {
			v.Set(reflect.New(v.Type().Elem()))
		}
		d.value(n, v.Elem(), path)
		return
	}
	if v.Type() == nodeType {
		v.Set(reflect.ValueOf(*n))
		return
	}
	if v.Type() == durationType {
		d.duration(n, v, path)
		return
	}
	if v.CanAddr() && v.Addr().Type().Implements(textUnmarshalerType) {
		if !d.scalar(n, path) {
			return
		}
		if err := v.Addr().Interface().(encoding.TextUnmarshaler).UnmarshalText([]byte(n.Value)); err != nil {
			d.fail(n, path, "%v", err)
		}
		return
	}
	switch v.Kind() {
	case reflect.Struct:
		d.structure(n, v, path)
	case reflect.Slice:
		d.slice(n, v, path)
	case reflect.Map:
		d.mapping(n, v, path)
	case reflect.String:
		if d.scalar(n, path) {
			v.SetString(n.Value)
		}
	case reflect.Bool:
		if !d.scalar(n, path) {
			return
		}
		if n.Tag != "!!bool" {
			d.fail(n, path, "expected true or false, got %q", n.Value)
			return
		}
		b, _ := strconv.ParseBool(strings.ToLower(n.Value))
		v.SetBool(b)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		if !d.scalar(n, path) {
			return
		}
		i, err := parseSize(n.Value)
		if err != nil || v.OverflowInt(i) {
			d.fail(n, path, "expected an integer, got %q", n.Value)
			return
		}
		v.SetInt(i)
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		if !d.scalar(n, path) {
			return
		}
		i, err := parseSize(n.Value)
		if err != nil || i < 0 || v.OverflowUint(uint64(i)) {
			d.fail(n, path, "expected a non-negative integer, got %q", n.Value)
			return
		}
		v.SetUint(uint64(i))
	case reflect.Float32, reflect.Float64:
		if !d.scalar(n, path) {
			return
		}
		f, err := strconv.ParseFloat(n.Value, 64)
		if err != nil {
			d.fail(n, path, "expected a number, got %q", n.Value)
			return
		}
		v.SetFloat(f)
	default:
		d.fail(n, path, "unsupported field type %s", v.Type())
	}
}

func (d *decoder) scalar(n *yaml.Node, path string) bool {
	if n.Kind != yaml.ScalarNode {
		d.fail(n, path, "expected a single value, got %s", kindName(n.Kind))
		return false
	}
	return true
}

func (d *decoder) duration(n *yaml.Node, v reflect.Value, path string) {
	if !d.scalar(n, path) {
		return
	}
	if n.Value == "0" {
		v.SetInt(0)
		return
	}
	dur, err := time.ParseDuration(n.Value)
	if err != nil {
		d.fail(n, path, "invalid duration %q (use a unit, e.g. 30s, 5m, 1h)", n.Value)
		return
	}
	v.SetInt(int64(dur))
}

// parseSize accepts plain integers and byte sizes with a binary suffix (4MiB, 64KiB, 1GiB).
func parseSize(s string) (int64, error) {
	mult := int64(1)
	for _, u := range []struct {
		suffix string
		mult   int64
	}{{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}} {
		if rest, ok := strings.CutSuffix(s, u.suffix); ok {
			s, mult = strings.TrimSpace(rest), u.mult
			break
		}
	}
	i, err := strconv.ParseInt(strings.ReplaceAll(s, "_", ""), 0, 64)
	if err != nil {
		return 0, err
	}
	if mult > 1 && (i < 0 || i > (1<<62)/mult) {
		return 0, errors.New("out of range")
	}
	return i * mult, nil
}

func (d *decoder) structure(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind != yaml.MappingNode {
		d.fail(n, path, "expected a mapping, got %s", kindName(n.Kind))
		return
	}
	fields := fieldsOf(v)
	seen := make(map[string]bool, len(n.Content)/2)
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, val := n.Content[i], n.Content[i+1]
		p := join(path, k.Value)
		if seen[k.Value] {
			d.fail(k, p, "duplicate key")
			continue
		}
		seen[k.Value] = true
		d.lines[p] = k.Line
		f, ok := fields[k.Value]
		if !ok {
			d.fail(k, p, "unknown field")
			continue
		}
		d.value(val, v.FieldByIndex(f), p)
	}
}

// fieldsOf maps YAML keys to struct field indexes, following `yaml:",inline"` embedding.
func fieldsOf(v reflect.Value) map[string][]int {
	out := map[string][]int{}
	var walk func(t reflect.Type, prefix []int)
	walk = func(t reflect.Type, prefix []int) {
		for i := range t.NumField() {
			f := t.Field(i)
			tag := f.Tag.Get("yaml")
			name, opts, _ := strings.Cut(tag, ",")
			idx := append(append([]int(nil), prefix...), i)
			if strings.Contains(opts, "inline") && f.Type.Kind() == reflect.Struct {
				walk(f.Type, idx)
				continue
			}
			if !f.IsExported() || name == "-" {
				continue
			}
			if name == "" {
				name = strings.ToLower(f.Name)
			}
			out[name] = idx
		}
	}
	walk(v.Type(), nil)
	return out
}

func (d *decoder) slice(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind != yaml.SequenceNode {
		d.fail(n, path, "expected a list, got %s", kindName(n.Kind))
		return
	}
	// A list in the file replaces the default list; its elements start from zero values.
	s := reflect.MakeSlice(v.Type(), len(n.Content), len(n.Content))
	for i, e := range n.Content {
		p := fmt.Sprintf("%s[%d]", path, i)
		d.lines[p] = e.Line
		d.value(e, s.Index(i), p)
	}
	v.Set(s)
}

func (d *decoder) mapping(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind != yaml.MappingNode {
		d.fail(n, path, "expected a mapping, got %s", kindName(n.Kind))
		return
	}
	if v.Type().Key().Kind() != reflect.String {
		d.fail(n, path, "unsupported map key type %s", v.Type().Key())
		return
	}
	m := reflect.MakeMapWithSize(v.Type(), len(n.Content)/2)
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, val := n.Content[i], n.Content[i+1]
		p := join(path, k.Value)
		if m.MapIndex(reflect.ValueOf(k.Value).Convert(v.Type().Key())).IsValid() {
			d.fail(k, p, "duplicate key")
			continue
		}
		d.lines[p] = k.Line
		e := reflect.New(v.Type().Elem()).Elem()
		d.value(val, e, p)
		m.SetMapIndex(reflect.ValueOf(k.Value).Convert(v.Type().Key()), e)
	}
	v.Set(m)
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

func kindName(k yaml.Kind) string {
	switch k {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		return "a single value"
	default:
		return "something else"
	}
}
