package policy

import (
	"crypto/sha256"
	_ "embed"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"path"
	"slices"
	"strings"
	"time"

	"github.com/google/cel-go/cel"
	"github.com/google/cel-go/common"
	celast "github.com/google/cel-go/common/ast"
	"github.com/google/cel-go/common/types"
	"github.com/google/cel-go/common/types/ref"
	"github.com/google/cel-go/ext"
	celinterp "github.com/google/cel-go/interpreter"
	"gopkg.in/yaml.v3"

	"github.com/mcpguard/mcpguard/internal/yamlx"
	"github.com/mcpguard/mcpguard/mcp"
)

//go:embed default.yaml
var defaultPolicy []byte

// DefaultPolicy is the embedded policy used when no file is configured: it blocks
// destructive SQL and shell commands and allows the rest.
func DefaultPolicy() []byte { return defaultPolicy }

// costLimit bounds one condition's evaluation, so no rule can stall the data path.
const costLimit = 1_000_000

// file is the policy file as written.
type file struct {
	Version    int                 `yaml:"version"`
	Mode       string              `yaml:"mode"`
	Default    Action              `yaml:"default"`
	SQLDialect Dialect             `yaml:"sql_dialect"`
	DenyAs     Reply               `yaml:"deny_as"`
	Tools      map[string]ToolSpec `yaml:"tools"`
	Rules      []ruleSpec          `yaml:"rules"`
}

// ToolSpec says which argument of a tool carries SQL or a shell command.
type ToolSpec struct {
	SQL   *ArgSpec `yaml:"sql"`
	Shell *ArgSpec `yaml:"shell"`
}

// ArgSpec names an argument (a gjson path into the arguments object) and, for SQL, its dialect
// (the policy's sql_dialect when not given).
type ArgSpec struct {
	Argument string  `yaml:"argument"`
	Dialect  Dialect `yaml:"dialect"`
}

type ruleSpec struct {
	Name        string    `yaml:"name"`
	Description string    `yaml:"description"`
	When        yaml.Node `yaml:"when"`
	Action      Action    `yaml:"action"`
	ObserveAs   Action    `yaml:"observe_as"`
	Approvers   []string  `yaml:"approvers"`
	Message     string    `yaml:"message"`
	Respond     Reply     `yaml:"respond"`
}

// Rule is one compiled rule.
type Rule struct {
	Name, Description, Message string
	Action                     Action
	// ObserveAs is the would-be action of an observe rule (deny unless set).
	ObserveAs Action
	Approvers []string
	// Reply is how a denied tools/call is answered (the policy's deny_as unless set).
	Reply Reply
	// Condition is the CEL source; Line is where it starts in the file.
	Condition string
	Line      int
	prg       cel.Program
	needs     needs
}

// Set is a compiled policy; it is immutable and safe for concurrent use.
type Set struct {
	rules  []Rule
	def    Action
	dryRun bool
	denyAs Reply
	tools  map[string]ToolSpec
	// argPaths are the argument paths conditions read by name ("mode", "opts.level"), which
	// CheckArguments guards against folded member names.
	argPaths []string
	// version identifies the policy text ("sha256:" and 16 hex digits of its digest).
	version string
	// idx skips the rules a message cannot match (see index.go); nil evaluates every rule.
	idx *index
	// cls classifies the SQL and shell arguments (see memo.go).
	cls classifier
}

// Version identifies the policy: a digest of the file it was compiled from, so the same text
// has the same version in every replica and after every restart.
func (s *Set) Version() string { return s.version }

// PerIdentity reports whether a refusing rule depends on the caller (mentions identity), so
// that what one identity is shown (tools/list) may differ from what another is shown.
func (s *Set) PerIdentity() bool {
	for _, r := range s.rules {
		if (r.Action == Deny || r.Action == RequireApproval) && strings.Contains(r.Condition, "identity") {
			return true
		}
	}
	return s.def != Allow
}

// Rules returns the compiled rules in order. The slice must not be modified.
func (s *Set) Rules() []Rule { return s.rules }

// Compile parses and compiles a policy file. The error lists every problem with its line.
func Compile(data []byte) (*Set, error) { return compile(data, shared) }

func compile(data []byte, cls classifier) (*Set, error) {
	var f file
	lines, err := yamlx.Decode(data, &f)
	if lines == nil { // not YAML: nothing else can be said
		return nil, fmt.Errorf("policy: %w", err)
	}
	// What did decode is checked too, so every problem of the file comes in one run.
	var errs []error
	if err != nil {
		errs = append(errs, err)
	}
	if f.Version != 1 {
		errs = append(errs, fmt.Errorf("version: must be 1, got %d", f.Version))
	}
	sum := sha256.Sum256(data)
	s := &Set{def: f.Default, tools: f.Tools, version: "sha256:" + hex.EncodeToString(sum[:8]), cls: cls}
	switch f.Mode {
	case "", "enforce":
	case "observe":
		s.dryRun = true
	default:
		errs = append(errs, fmt.Errorf("mode: %q is not enforce or observe", f.Mode))
	}
	if f.Default == "" {
		errs = append(errs, errors.New("default: required (allow, deny or require_approval)"))
	} else if err := f.Default.Validate(); err != nil || f.Default == Observe {
		errs = append(errs, fmt.Errorf("default: %q is not allow, deny or require_approval", string(f.Default)))
	}
	if f.DenyAs == "" {
		f.DenyAs = ReplyError
	}
	if err := f.DenyAs.Validate(); err != nil {
		errs = append(errs, fmt.Errorf("deny_as: %w", err))
	}
	s.denyAs = f.DenyAs
	if f.SQLDialect == "" {
		f.SQLDialect = Postgres
	}
	if err := f.SQLDialect.Validate(); err != nil {
		errs = append(errs, fmt.Errorf("sql_dialect: %w", err))
	}
	for name, t := range f.Tools {
		if t.SQL == nil && t.Shell == nil {
			errs = append(errs, fmt.Errorf("tools.%s: needs sql or shell", name))
		}
		if t.SQL != nil {
			if t.SQL.Argument == "" {
				errs = append(errs, fmt.Errorf("tools.%s.sql.argument: required", name))
			}
			if t.SQL.Dialect == "" {
				t.SQL.Dialect = f.SQLDialect // the policy's sql_dialect unless the tool says otherwise
			}
			if err := t.SQL.Dialect.Validate(); err != nil {
				errs = append(errs, fmt.Errorf("tools.%s.sql.dialect: %w", name, err))
			}
		}
		if t.Shell != nil {
			if t.Shell.Argument == "" {
				errs = append(errs, fmt.Errorf("tools.%s.shell.argument: required", name))
			}
			if t.Shell.Dialect != "" {
				errs = append(errs, fmt.Errorf("tools.%s.shell.dialect: not allowed for shell", name))
			}
		}
	}
	env, err := newEnv(f.SQLDialect, cls)
	if err != nil {
		return nil, fmt.Errorf("policy environment: %w", err)
	}
	sc, err := conditionSchema()
	if err != nil {
		return nil, fmt.Errorf("policy environment: %w", err)
	}
	seen := map[string]int{}
	for i, r := range f.Rules {
		at := fmt.Sprintf("rules[%d]", i)
		line := r.When.Line
		if r.Name == "" {
			errs = append(errs, fmt.Errorf("%s.name: required", at))
		} else if prev, dup := seen[r.Name]; dup {
			errs = append(errs, fmt.Errorf("%s.name: %q already used by rules[%d]", at, r.Name, prev))
		} else {
			seen[r.Name] = i
			at = fmt.Sprintf("rules[%d] (%s)", i, r.Name)
		}
		if err := r.Action.Validate(); err != nil {
			errs = append(errs, fmt.Errorf("%s.action: %w", at, err))
		}
		obs := r.ObserveAs
		switch {
		case obs != "" && r.Action != Observe:
			errs = append(errs, fmt.Errorf("%s.observe_as: only for action observe", at))
		case obs == "":
			obs = Deny
		case obs != Deny && obs != RequireApproval && obs != Allow:
			errs = append(errs, fmt.Errorf("%s.observe_as: %q is not allow, deny or require_approval", at, string(obs)))
		}
		if len(r.Approvers) > 0 && r.Action != RequireApproval && (r.Action != Observe || obs != RequireApproval) {
			errs = append(errs, fmt.Errorf("%s.approvers: only for require_approval", at))
		}
		reply := r.Respond
		switch {
		case reply == "":
			reply = f.DenyAs
		case r.Action != Deny:
			errs = append(errs, fmt.Errorf("%s.respond: only for action deny", at))
		default:
			if err := reply.Validate(); err != nil {
				errs = append(errs, fmt.Errorf("%s.respond: %w", at, err))
			}
		}
		if r.When.Kind != yaml.ScalarNode || strings.TrimSpace(r.When.Value) == "" {
			errs = append(errs, fmt.Errorf("%s.when: required (a CEL expression)", at))
			continue
		}
		ast, iss := env.Compile(r.When.Value)
		if iss.Err() != nil {
			parsed, _ := env.Parse(r.When.Value)
			errs = append(errs, celErrors(at, &r.When, iss.Errors(), func(e *cel.Error) string { return sc.undefinedField(parsed, e) })...)
			continue
		}
		if built := sc.constructions(ast); len(built) > 0 {
			for _, b := range built {
				errs = append(errs, fmt.Errorf("line %d: %s.when: %s", line, at, b))
			}
			continue
		}
		if dErrs := literalDialects(at, &r.When, ast); len(dErrs) > 0 {
			errs = append(errs, dErrs...)
			continue
		}
		if !ast.OutputType().IsExactType(types.BoolType) && !ast.OutputType().IsExactType(types.DynType) {
			errs = append(errs, fmt.Errorf("line %d: %s.when: must be a bool expression, is %s", line, at, ast.OutputType()))
			continue
		}
		s.argPaths = appendNew(s.argPaths, argumentPaths(ast.NativeRep().Expr())...)
		prg, err := env.Program(ast, cel.EvalOptions(cel.OptOptimize), cel.CostLimit(costLimit))
		if err != nil {
			errs = append(errs, fmt.Errorf("line %d: %s.when: %w", line, at, err))
			continue
		}
		s.rules = append(s.rules, Rule{
			Name: r.Name, Description: r.Description, Message: r.Message, Action: r.Action,
			ObserveAs: obs, Approvers: r.Approvers, Reply: reply, Condition: r.When.Value, Line: line, prg: prg,
			needs: analyze(ast.NativeRep().Expr()),
		})
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	all := make([]needs, len(s.rules))
	for i, r := range s.rules {
		all[i] = r.needs
	}
	s.idx = newIndex(all)
	return s, nil
}

// celErrors maps CEL issue positions to lines of the policy file.
func celErrors(at string, n *yaml.Node, issues []*cel.Error, message func(*cel.Error) string) []error {
	out := make([]error, 0, len(issues))
	for _, e := range issues {
		out = append(out, fmt.Errorf("line %d: %s.when: %s", fileLine(n, e.Location), at, message(e)))
	}
	return out
}

// fileLine maps a position in a condition to its line in the policy file.
func fileLine(n *yaml.Node, loc common.Location) int {
	line := n.Line
	if n.Style&(yaml.LiteralStyle|yaml.FoldedStyle) != 0 {
		line++ // block scalars start on the next line
	}
	if loc != nil && loc.Line() > 0 {
		line += loc.Line() - 1
	}
	return line
}

// literalDialects refuses every sql(payload, dialect) call whose dialect is not a string
// literal naming a known dialect. The grammar a payload is parsed with belongs to the policy:
// an agent that chose it could pick the one under which its statement hides its effect.
func literalDialects(at string, n *yaml.Node, a *cel.Ast) []error {
	native := a.NativeRep()
	var out []error
	celast.PreOrderVisit(native.Expr(), celast.NewExprVisitor(func(e celast.Expr) {
		if e.Kind() != celast.CallKind || e.AsCall().FunctionName() != "sql" {
			return
		}
		c := e.AsCall()
		args := c.Args()
		if c.IsMemberFunction() {
			args = append([]celast.Expr{c.Target()}, args...)
		}
		if len(args) != 2 {
			return
		}
		d := args[1]
		line := fileLine(n, native.SourceInfo().GetStartLocation(d.ID()))
		var problem string
		switch {
		case mentions(d, "request"):
			problem = "the dialect must not come from the request; write it as a string literal (\"postgres\" or \"mysql\") or configure the tool's sql.dialect"
		case d.Kind() != celast.LiteralKind:
			problem = "the dialect must be a string literal (\"postgres\" or \"mysql\")"
		default:
			lit, ok := d.AsLiteral().(types.String)
			if !ok {
				problem = "the dialect must be a string literal (\"postgres\" or \"mysql\")"
			} else if err := Dialect(lit).Validate(); err != nil {
				problem = "dialect " + err.Error()
			}
		}
		if problem != "" {
			out = append(out, fmt.Errorf("line %d: %s.when: sql(): %s", line, at, problem))
		}
	}))
	return out
}

// argumentPaths returns the dotted paths below request.arguments that e reads by name:
// field selections (request.arguments.opts.level), indexes by a string literal
// (request.arguments["mode"]) and membership tests ("mode" in request.arguments).
func argumentPaths(e celast.Expr) []string {
	var out []string
	celast.PreOrderVisit(e, celast.NewExprVisitor(func(x celast.Expr) {
		var segs []string
		cur := x
		for {
			switch {
			case cur.Kind() == celast.SelectKind:
				segs = append(segs, cur.AsSelect().FieldName())
				cur = cur.AsSelect().Operand()
				continue
			case cur.Kind() == celast.CallKind && cur.AsCall().FunctionName() == "_[_]" && len(cur.AsCall().Args()) == 2:
				if lit, ok := stringLiteral(cur.AsCall().Args()[1]); ok {
					segs = append(segs, lit)
					cur = cur.AsCall().Args()[0]
					continue
				}
			case cur.Kind() == celast.CallKind && cur.AsCall().FunctionName() == "@in" && len(cur.AsCall().Args()) == 2:
				if lit, ok := stringLiteral(cur.AsCall().Args()[0]); ok && len(segs) == 0 {
					segs = append(segs, lit)
					cur = cur.AsCall().Args()[1]
					continue
				}
			}
			break
		}
		// segs run from the outermost access inwards: the last two must be arguments, request.
		n := len(segs)
		if n < 2 || segs[n-1] != "arguments" || cur.Kind() != celast.IdentKind || cur.AsIdent() != "request" {
			return
		}
		path := make([]string, 0, n-1)
		for i := n - 2; i >= 0; i-- {
			path = append(path, segs[i])
		}
		out = append(out, strings.Join(path, "."))
	}))
	return out
}

func stringLiteral(e celast.Expr) (string, bool) {
	if e.Kind() != celast.LiteralKind {
		return "", false
	}
	s, ok := e.AsLiteral().(types.String)
	return string(s), ok
}

// appendNew appends the elements of add that dst does not hold yet.
func appendNew(dst []string, add ...string) []string {
	for _, a := range add {
		if !slices.Contains(dst, a) {
			dst = append(dst, a)
		}
	}
	return dst
}

// mentions reports whether e refers to the variable name anywhere.
func mentions(e celast.Expr, name string) bool {
	found := false
	celast.PreOrderVisit(e, celast.NewExprVisitor(func(x celast.Expr) {
		if x.Kind() == celast.IdentKind && x.AsIdent() == name {
			found = true
		}
	}))
	return found
}

// newEnv declares the variables and functions conditions may use.
// The variables are typed objects (see env.go): a field that does not exist is a compile error.
func newEnv(d Dialect, cls classifier) (*cel.Env, error) {
	sc, err := conditionSchema()
	if err != nil {
		return nil, err
	}
	sqlT, shellT := cel.ObjectType(typeSQL), cel.ObjectType(typeShell)
	return cel.NewEnv(
		sc.declarations(),
		ext.Strings(),
		cel.Function("sql",
			cel.Overload("sql_string", []*cel.Type{cel.StringType}, sqlT,
				cel.UnaryBinding(func(v ref.Val) ref.Val {
					return types.DefaultTypeAdapter.NativeToValue(cls.classifySQL(d, string(v.(types.String))).val)
				})),
			cel.Overload("sql_string_dialect", []*cel.Type{cel.StringType, cel.StringType}, sqlT,
				cel.BinaryBinding(func(v, dial ref.Val) ref.Val {
					return types.DefaultTypeAdapter.NativeToValue(cls.classifySQL(Dialect(dial.(types.String)), string(v.(types.String))).val)
				}))),
		cel.Function("shell",
			cel.Overload("shell_string", []*cel.Type{cel.StringType}, shellT,
				cel.UnaryBinding(func(v ref.Val) ref.Val {
					return types.DefaultTypeAdapter.NativeToValue(cls.classifyShell(string(v.(types.String))).val)
				}))),
		cel.Function("glob",
			cel.Overload("glob_string_string", []*cel.Type{cel.StringType, cel.StringType}, cel.BoolType,
				cel.BinaryBinding(func(pat, s ref.Val) ref.Val {
					ok, err := path.Match(string(pat.(types.String)), string(s.(types.String)))
					if err != nil {
						return types.NewErr("glob: %v", err)
					}
					return types.Bool(ok)
				}))),
	)
}

// Input is everything a decision depends on.
type Input struct {
	Identity Identity
	// Msg is the request or notification under decision (nil for an event).
	Msg      *mcp.Message
	Revision mcp.Revision
	// Headers are the HTTP request headers (credentials are never shown to conditions).
	Headers map[string]string
	Session Session
	// Event, when set, is decided instead of a request (request.method is then the
	// method of the message that revealed it, e.g. tools/list).
	Event *Event
	// Listing evaluates a tool's visibility for tools/list: Msg is a synthetic tools/call
	// without arguments, and conditions that cannot be evaluated count as not matching.
	Listing bool
	// Now is the decision time; zero means time.Now().
	Now time.Time
}

// Step is one rule's evaluation, for [Set.Explain].
type Step struct {
	Rule    string
	Line    int
	Action  Action
	Matched bool
	// Skipped is set when the index proved the rule cannot match the message: its condition
	// was not evaluated (it is false for this message).
	Skipped bool
	Err     string
}

// Decide evaluates the rules in order; the first matching allow, deny or require_approval
// rule decides, observe rules are recorded on the way, and the default applies otherwise.
func (s *Set) Decide(in Input) Decision {
	d, _ := s.eval(in, false)
	d.Version = s.version
	return d
}

// Explain is [Set.Decide] plus the evaluation of every rule up to the deciding one.
func (s *Set) Explain(in Input) (Decision, []Step) {
	d, steps := s.eval(in, true)
	d.Version = s.version
	return d, steps
}

func (s *Set) eval(in Input, explain bool) (Decision, []Step) {
	var (
		v    *view
		cand []uint64
	)
	if s.idx != nil {
		v = viewOf(in)
		var buf [4]uint64
		if s.idx.words <= len(buf) {
			cand = buf[:s.idx.words]
		} else {
			cand = make([]uint64, s.idx.words)
		}
		s.idx.candidates(v, cand)
	}
	// The variables (arguments decoded, SQL and shell classified) are built for the first
	// rule that is evaluated, so a message no rule can match costs only the index.
	var act *vars
	var steps []Step
	var observed []Observation
	for i := range s.rules {
		r := &s.rules[i]
		if s.idx != nil && !s.idx.admits(v, cand, i) {
			if explain {
				steps = append(steps, Step{Rule: r.Name, Line: r.Line, Action: r.Action, Skipped: true})
			}
			continue
		}
		if act == nil {
			act = s.vars(&in)
		}
		out, _, err := r.prg.Eval(act)
		matched, errText := false, ""
		switch {
		case err != nil:
			errText = err.Error()
		case out.Type() != types.BoolType:
			errText = "condition is not a bool"
		default:
			matched = out == types.True
		}
		if errText != "" && !in.Listing && (r.Action == Deny || r.Action == RequireApproval) {
			matched = true // fail closed: a refusing rule that cannot be evaluated refuses
		}
		if explain {
			steps = append(steps, Step{Rule: r.Name, Line: r.Line, Action: r.Action, Matched: matched, Err: errText})
		}
		if !matched {
			continue
		}
		reason := findings(act.sql.v, act.shell.v)
		if errText != "" {
			reason = "condition could not be evaluated: " + errText
		}
		if r.Action == Observe {
			observed = append(observed, Observation{Rule: r.Name, Would: r.ObserveAs, Reason: reason})
			continue
		}
		d := Decision{
			Action: r.Action, Rule: r.Name, Message: r.Message, Reason: reason,
			Approvers: r.Approvers, Observed: observed, DryRun: s.dryRun, Reply: ReplyError,
		}
		if r.Action == Deny {
			d.Reply = r.Reply
		}
		return d, steps
	}
	d := Decision{Action: s.def, Message: "no rule matched; policy default", Observed: observed, DryRun: s.dryRun, Reply: ReplyError}
	if s.def == Deny {
		d.Reply = s.denyAs
	}
	return d, steps
}

func findings(q SQL, sh Shell) string {
	return strings.Join(append(q.Reasons(), sh.Reasons()...), "; ")
}

// activation builds the CEL variables for in, all of them (the schema of conditions is
// derived from it). The configured SQL or shell argument of the tool is classified once here
// (request.sql, request.shell).
func (s *Set) activation(in Input) (map[string]any, *memoEntry[SQL], *memoEntry[Shell]) {
	vs := s.vars(&in)
	act := make(map[string]any, len(varNames))
	for _, n := range varNames {
		act[n], _ = vs.ResolveName(n)
	}
	return act, vs.sql, vs.shell
}

// varNames are the variables conditions see.
var varNames = []string{"identity", "request", "session", "event", "now"}

// vars are the CEL variables of one decision. The request (its arguments decoded, SQL and
// shell classified) is built with it; the others when a condition first reads them, so that
// a variable no evaluated condition reads costs nothing. Values that are the same for every
// decision (no event, no headers, no arguments) are shared and never modified.
type vars struct {
	in    *Input
	req   map[string]any
	sql   *memoEntry[SQL]
	shell *memoEntry[Shell]
	id    map[string]any
	sess  map[string]any
	ev    map[string]any
	now   any
}

var _ celinterp.Activation = (*vars)(nil)

var (
	noEvent   = map[string]any{"kind": "", "tool": ""}
	noHeaders = map[string]any{}
	noArgs    = map[string]any{}
)

func (s *Set) vars(in *Input) *vars {
	q, sh := noSQL, noShell
	var method, tool, uri, prompt any = "", "", "", ""
	var arguments any = noArgs
	if m := in.Msg; m != nil {
		method, tool, uri, prompt = m.Method, m.Tool, m.URI, m.Prompt
		args, argErr := decodeArguments(m.Arguments)
		if args != nil {
			arguments = args
		}
		if spec, ok := s.tools[m.Tool]; ok && m.Method == "tools/call" {
			q, sh = s.cls.classifyArgs(spec, args, argErr)
		}
	}
	headers := noHeaders
	if len(in.Headers) > 0 {
		headers = headerMap(in.Headers)
	}
	return &vars{
		in: in, sql: q, shell: sh,
		req: map[string]any{
			"method": method, "tool": tool, "arguments": arguments, "uri": uri, "prompt": prompt,
			"revision": string(in.Revision), "headers": headers, "listing": in.Listing,
			"sql": q.val, "shell": sh.val,
		},
	}
}

// ResolveName returns the variable name, building it on first use.
func (v *vars) ResolveName(name string) (any, bool) {
	switch name {
	case "request":
		return v.req, true
	case "identity":
		if v.id == nil {
			id := v.in.Identity
			scopes, groups := id.Scopes, id.Groups
			if scopes == nil {
				scopes = []string{}
			}
			if groups == nil {
				groups = []string{}
			}
			v.id = map[string]any{
				"subject": id.Subject, "client_id": id.ClientID, "issuer": id.Issuer, "scopes": scopes, "groups": groups,
			}
		}
		return v.id, true
	case "session":
		if v.sess == nil {
			se := v.in.Session
			v.sess = map[string]any{"id": se.ID, "calls": se.Calls, "tool_calls": se.ToolCalls}
		}
		return v.sess, true
	case "event":
		if v.ev == nil {
			v.ev = noEvent
			if e := v.in.Event; e != nil {
				v.ev = map[string]any{"kind": e.Kind, "tool": e.Tool}
			}
		}
		return v.ev, true
	case "now":
		if v.now == nil {
			v.now = nowOr(v.in.Now)
		}
		return v.now, true
	}
	return nil, false
}

// Parent is nil: the variables are all in vars.
func (*vars) Parent() celinterp.Activation { return nil }

// maxArgumentDepth bounds the nesting of the arguments decoded for conditions. The protocol
// stage refuses deeper messages (mcp.MaxDepth) before they reach the policy; this keeps the
// policy safe on its own, whoever builds the Input.
const maxArgumentDepth = mcp.MaxDepth

// decodeArguments decodes a tools/call arguments object for conditions. Arguments nested
// deeper than maxArgumentDepth are not decoded at all (the depth is measured first, without
// recursion), so neither the decoder nor CEL ever walks a deep value.
func decodeArguments(raw json.RawMessage) (map[string]any, error) {
	if len(raw) == 0 {
		return nil, nil
	}
	if jsonDepth(raw) > maxArgumentDepth {
		return nil, &limitError{fmt.Sprintf("tool arguments too deeply nested to check (depth > %d)", maxArgumentDepth)}
	}
	var args map[string]any
	if err := json.Unmarshal(raw, &args); err != nil {
		return nil, fmt.Errorf("tool arguments could not be decoded: %w", err)
	}
	return args, nil
}

// jsonDepth is the deepest nesting of objects and arrays in raw, strings skipped.
func jsonDepth(raw []byte) int {
	depth, deepest, inString := 0, 0, false
	for i := 0; i < len(raw); i++ {
		c := raw[i]
		switch {
		case inString && c == '\\':
			i++
		case c == '"':
			inString = !inString
		case inString:
		case c == '{' || c == '[':
			depth++
			deepest = max(deepest, depth)
		case c == '}' || c == ']':
			depth--
		}
	}
	return deepest
}

// classifyArgs classifies the tool's configured SQL and shell arguments. An argument that is
// present but not a string, or arguments that could not be decoded (argErr), are reported
// as unparsable, never skipped.
func (c classifier) classifyArgs(spec ToolSpec, args map[string]any, argErr error) (*memoEntry[SQL], *memoEntry[Shell]) {
	q, sh := noSQL, noShell
	if argErr != nil {
		unchecked := errors.As(argErr, new(*limitError))
		if spec.SQL != nil {
			q = sqlEntry(SQL{Present: true, Dialect: spec.SQL.Dialect, Error: argErr.Error(), Unchecked: unchecked})
		}
		if spec.Shell != nil {
			sh = shellEntry(Shell{Present: true, Error: argErr.Error(), Unchecked: unchecked})
		}
		return q, sh
	}
	if spec.SQL != nil {
		if v, ok := lookup(args, spec.SQL.Argument); ok {
			if str, isStr := v.(string); isStr {
				q = c.classifySQL(spec.SQL.Dialect, str)
			} else {
				q = sqlEntry(SQL{Present: true, Dialect: spec.SQL.Dialect, Error: "argument " + spec.SQL.Argument + " is not a string"})
			}
		}
	}
	if spec.Shell != nil {
		if v, ok := lookup(args, spec.Shell.Argument); ok {
			if str, isStr := v.(string); isStr {
				sh = c.classifyShell(str)
			} else {
				sh = shellEntry(Shell{Present: true, Error: "argument " + spec.Shell.Argument + " is not a string"})
			}
		}
	}
	return q, sh
}

// lookup follows a dotted path (query, or options.sql) through decoded JSON objects, matching
// names as a case-insensitive decoder would when no member has the exact name.
func lookup(args map[string]any, p string) (any, bool) {
	var cur any = args
	for _, k := range strings.Split(p, ".") {
		m, ok := cur.(map[string]any)
		if !ok {
			return nil, false
		}
		if cur, ok = member(m, k); !ok {
			return nil, false
		}
	}
	return cur, true
}
