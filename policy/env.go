package policy

import (
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/google/cel-go/cel"
	celast "github.com/google/cel-go/common/ast"
	"github.com/google/cel-go/common/types"
	"github.com/google/cel-go/common/types/ref"
)

// Conditions see typed objects, so that a misspelt field (request.sql.destructiv,
// identity.grups) is a compile error with its line instead of a run-time error that makes
// every refusing rule match. The declared fields are derived from the values conditions are
// handed, never listed twice:
//
//   - identity, request, session, event: the maps [Set.activation] builds;
//   - request.sql and sql(s): the map [SQL.Value] returns, its statements[] elements too;
//   - request.shell and shell(s): the map [Shell.Value] returns.
//
// A field added to one of those maps is declared by that alone when its Go value is a bool,
// string, integer, float, []string or time.Time. A field holding a map or a list of maps
// needs an entry in fieldTypes (the tests fail until it has one).

// CEL names of the declared object types.
const (
	typeSQL       = "mcpguard.SQL"
	typeStatement = "mcpguard.SQLStatement"
	typeShell     = "mcpguard.Shell"
)

// fieldTypes are the CEL types of fields whose Go value does not say it: dynamic maps stay
// maps (arguments are whatever the tool takes), nested classifications are objects. Fields
// of a variable are keyed by its name (request.sql), fields of other objects by the type.
var fieldTypes = map[string]*cel.Type{
	"request.arguments":     cel.MapType(cel.StringType, cel.DynType),
	"request.headers":       cel.MapType(cel.StringType, cel.StringType),
	"request.sql":           cel.ObjectType(typeSQL),
	"request.shell":         cel.ObjectType(typeShell),
	typeSQL + ".statements": cel.ListType(cel.ObjectType(typeStatement)),
	typeShell + ".sql":      cel.ListType(cel.ObjectType(typeSQL)),
}

// schema is the set of object types conditions see, and the variables of those types.
type schema struct {
	objects map[string]map[string]*cel.Type // type name → field → type
	vars    []varDecl
}

type varDecl struct {
	name string
	typ  *cel.Type
}

var (
	schemaOnce sync.Once
	theSchema  *schema
	schemaErr  error
)

// conditionSchema derives the declared types once; they depend only on the code.
func conditionSchema() (*schema, error) {
	schemaOnce.Do(func() { theSchema, schemaErr = deriveSchema() })
	return theSchema, schemaErr
}

func deriveSchema() (*schema, error) {
	sc := &schema{objects: map[string]map[string]*cel.Type{}}
	var errs []error
	add := func(name string, m map[string]any) {
		if err := sc.object(name, m); err != nil {
			errs = append(errs, err)
		}
	}
	// A sample with one statement, so that the shape of statements[] elements shows.
	sample := SQL{Present: true, Parsed: true, Statements: []Statement{{}}}.Value()
	add(typeSQL, sample)
	if st, ok := sample["statements"].([]any); ok && len(st) == 1 {
		if m, isMap := st[0].(map[string]any); isMap {
			add(typeStatement, m)
		}
	}
	if _, ok := sc.objects[typeStatement]; !ok {
		errs = append(errs, fmt.Errorf("%s: statements[] elements are not maps", typeSQL))
	}
	add(typeShell, Shell{Present: true, Parsed: true, SQL: []SQL{{Present: true}}}.Value())

	// The variables: whatever the activation of an empty input holds.
	act, _, _ := (&Set{}).activation(Input{Now: time.Unix(0, 0)})
	names := make([]string, 0, len(act))
	for k := range act {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		if m, ok := act[k].(map[string]any); ok {
			typeName := "mcpguard." + strings.ToUpper(k[:1]) + k[1:]
			if err := sc.fields(typeName, k, m); err != nil {
				errs = append(errs, err)
			}
			sc.vars = append(sc.vars, varDecl{k, cel.ObjectType(typeName)})
			continue
		}
		t, err := goType(act[k])
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", k, err))
			continue
		}
		sc.vars = append(sc.vars, varDecl{k, t})
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("condition types: %w", errors.Join(errs...))
	}
	return sc, nil
}

// object declares type name with the fields of m (hints keyed "name.field").
func (sc *schema) object(name string, m map[string]any) error {
	return sc.fields(name, name, m)
}

// fields declares type name from m; hints are looked up as "prefix.field".
func (sc *schema) fields(name, prefix string, m map[string]any) error {
	out := make(map[string]*cel.Type, len(m))
	var errs []error
	for k, v := range m {
		if t, ok := fieldTypes[prefix+"."+k]; ok {
			out[k] = t
			continue
		}
		t, err := goType(v)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s.%s: %w (declare it in fieldTypes)", prefix, k, err))
			continue
		}
		out[k] = t
	}
	sc.objects[name] = out
	return errors.Join(errs...)
}

// goType is the CEL type of a Go value whose type alone says it.
func goType(v any) (*cel.Type, error) {
	switch v.(type) {
	case bool:
		return cel.BoolType, nil
	case string:
		return cel.StringType, nil
	case int, int32, int64:
		return cel.IntType, nil
	case float64:
		return cel.DoubleType, nil
	case []string:
		return cel.ListType(cel.StringType), nil
	case time.Time:
		return cel.TimestampType, nil
	}
	return nil, fmt.Errorf("no CEL type for Go %T", v)
}

// fieldNames lists the fields of an object type, sorted.
func (sc *schema) fieldNames(typeName string) []string {
	fs := sc.objects[typeName]
	out := make([]string, 0, len(fs))
	for k := range fs {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// declarations is the EnvOption declaring the schema's types and variables.
func (sc *schema) declarations() cel.EnvOption {
	return func(e *cel.Env) (*cel.Env, error) {
		p := &schemaProvider{Provider: e.CELTypeProvider(), sc: sc}
		e, err := cel.CustomTypeProvider(p)(e)
		if err != nil {
			return nil, err
		}
		for _, v := range sc.vars {
			if e, err = cel.Variable(v.name, v.typ)(e); err != nil {
				return nil, err
			}
		}
		return e, nil
	}
}

// schemaProvider answers the type checker's questions about the declared object types and
// leaves everything else to the environment's provider. The values stay Go maps at run
// time: field access on them is CEL's ordinary map access (FieldType.GetFrom is unset), so
// the run-time representation is unchanged and only the checker knows the fields.
type schemaProvider struct {
	types.Provider
	sc *schema
}

var _ types.Provider = (*schemaProvider)(nil)

// FindStructType implements [types.Provider].
func (p *schemaProvider) FindStructType(name string) (*types.Type, bool) {
	if _, ok := p.sc.objects[name]; ok {
		return types.NewTypeTypeWithParam(types.NewObjectType(name)), true
	}
	return p.Provider.FindStructType(name)
}

// FindStructFieldNames implements [types.Provider].
func (p *schemaProvider) FindStructFieldNames(name string) ([]string, bool) {
	if _, ok := p.sc.objects[name]; ok {
		return p.sc.fieldNames(name), true
	}
	return p.Provider.FindStructFieldNames(name)
}

// FindStructFieldType implements [types.Provider].
func (p *schemaProvider) FindStructFieldType(name, field string) (*types.FieldType, bool) {
	if fs, ok := p.sc.objects[name]; ok {
		t, found := fs[field]
		if !found {
			return nil, false
		}
		return &types.FieldType{Type: t}, true
	}
	return p.Provider.FindStructFieldType(name, field)
}

// NewValue implements [types.Provider]: conditions cannot construct the declared types.
func (p *schemaProvider) NewValue(name string, fields map[string]ref.Val) ref.Val {
	if _, ok := p.sc.objects[name]; ok {
		return types.NewErr("%s cannot be constructed in a condition", name)
	}
	return p.Provider.NewValue(name, fields)
}

// undefinedField adds to the checker's "undefined field 'x'" the object the field was looked
// up on and the closest declared name, or the declared names: request.sql has no field
// 'destructiv'; did you mean 'destructive'?
func (sc *schema) undefinedField(parsed *cel.Ast, e *cel.Error) string {
	if parsed == nil || !strings.HasPrefix(e.Message, "undefined field") {
		return e.Message
	}
	var sel celast.Expr
	celast.PreOrderVisit(parsed.NativeRep().Expr(), celast.NewExprVisitor(func(x celast.Expr) {
		if x.ID() == e.ExprID && x.Kind() == celast.SelectKind {
			sel = x
		}
	}))
	if sel == nil {
		return e.Message
	}
	path, typeName := sc.resolve(sel.AsSelect().Operand())
	if typeName == "" {
		return e.Message
	}
	field := sel.AsSelect().FieldName()
	names := sc.fieldNames(typeName)
	if best := closest(field, names); best != "" {
		return fmt.Sprintf("%s has no field '%s'; did you mean '%s'?", path, field, best)
	}
	return fmt.Sprintf("%s has no field '%s' (its fields: %s)", path, field, strings.Join(names, ", "))
}

// resolve follows a chain of field selections from a variable (request.sql) and returns
// its text and declared object type; "" when it is not such a chain.
func (sc *schema) resolve(e celast.Expr) (string, string) {
	var segs []string
	for e.Kind() == celast.SelectKind {
		segs = append(segs, e.AsSelect().FieldName())
		e = e.AsSelect().Operand()
	}
	if e.Kind() != celast.IdentKind {
		return "", ""
	}
	var t *cel.Type
	for _, v := range sc.vars {
		if v.name == e.AsIdent() {
			t = v.typ
		}
	}
	path := e.AsIdent()
	for i := len(segs) - 1; i >= 0 && t != nil; i-- {
		if t.Kind() != types.StructKind {
			return "", ""
		}
		t = sc.objects[t.TypeName()][segs[i]]
		path += "." + segs[i]
	}
	if t == nil || t.Kind() != types.StructKind {
		return "", ""
	}
	return path, t.TypeName()
}

// closest is the name within edit distance 2 of s (the nearest, first in order), or "".
func closest(s string, names []string) string {
	best, bestD := "", 3
	for _, n := range names {
		if d := editDistance(s, n); d < bestD {
			best, bestD = n, d
		}
	}
	return best
}

func editDistance(a, b string) int {
	if len(a) > 64 || len(b) > 64 {
		return 64
	}
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

// constructions refuses object literals of the declared types (mcpguard.SQL{…}): the types
// describe what conditions are handed and cannot be built in a condition.
func (sc *schema) constructions(a *cel.Ast) []string {
	var out []string
	celast.PreOrderVisit(a.NativeRep().Expr(), celast.NewExprVisitor(func(x celast.Expr) {
		if x.Kind() != celast.StructKind {
			return
		}
		if name := x.AsStruct().TypeName(); sc.objects[name] != nil {
			out = append(out, name+" cannot be constructed in a condition")
		}
	}))
	return out
}
