package policy

import (
	"errors"
	"path"
	"slices"
	"strings"

	"mvdan.cc/sh/v3/syntax"
)

// Shell is the classification of one shell command line, after quote removal and after
// unwrapping sudo, env, exec, nohup, timeout, xargs and `sh -c '…'` (recursively).
type Shell struct {
	// Present is false when the tool carried no shell argument; all else is then empty.
	Present bool
	// Error is why the command did not parse; Parsed is false then.
	Error  string
	Parsed bool
	// Commands are the effective command names (base names), in order of appearance.
	Commands []string
	// PipeToInterpreter: output piped into sh, bash, python, perl, … (curl … | sh).
	PipeToInterpreter bool
	// RecursiveDelete: rm -r/-R/--recursive, find -delete or find -exec rm.
	RecursiveDelete bool
	// DiskWrite: dd of=/dev/…, mkfs, wipefs, shred, fdisk and friends.
	DiskWrite bool
	// ForkBomb: a function that calls itself in a pipe or in the background.
	ForkBomb bool
	// Substitution: $(…), `…` or <(…) anywhere; the command then depends on run-time output.
	Substitution bool
	// DynamicCommand: the command name itself is computed ($(echo rm), $CMD) or is eval/source.
	DynamicCommand bool
	// DeviceRedirect: output redirected to a device other than /dev/null, stdout, stderr, tty.
	DeviceRedirect bool
	// SQL holds the payloads of psql -c and mysql -e, classified in their dialects.
	SQL []SQL
	// Unchecked is set when the command was refused before parsing because it exceeds a
	// bound (size or nesting): Parsed is false and Error says which bound, as a reason.
	Unchecked bool
}

// maxShellDepth bounds `sh -c` nesting; deeper commands are refused as unparsable.
const maxShellDepth = 8

var errShellDepth = errors.New("sh -c nested too deeply")

// Dangerous reports any finding the embedded default policy blocks.
func (s Shell) Dangerous() bool {
	return !s.Parsed || s.PipeToInterpreter || s.RecursiveDelete || s.DiskWrite || s.ForkBomb ||
		s.DynamicCommand || s.DeviceRedirect || slices.ContainsFunc(s.SQL, func(q SQL) bool {
		v := q.Value()
		return !q.Parsed || v["destructive"].(bool) || v["unbounded"].(bool) || v["privilege"].(bool) || v["program"].(bool)
	})
}

// Reasons are short findings for denial messages; no command text.
func (s Shell) Reasons() []string {
	if !s.Present {
		return nil
	}
	if s.Unchecked {
		return []string{s.Error}
	}
	if !s.Parsed {
		return []string{"shell command did not parse: " + s.Error}
	}
	var out []string
	for _, f := range []struct {
		on  bool
		why string
	}{
		{s.PipeToInterpreter, "pipes into an interpreter"},
		{s.RecursiveDelete, "deletes recursively"},
		{s.DiskWrite, "writes to a disk device or file system"},
		{s.ForkBomb, "defines a self-replicating function (fork bomb)"},
		{s.DynamicCommand, "runs a computed command (eval, $(…) as command)"},
		{s.DeviceRedirect, "redirects output to a device"},
		{s.Substitution, "uses command substitution"},
	} {
		if f.on {
			out = append(out, f.why)
		}
	}
	for _, q := range s.SQL {
		out = append(out, q.Reasons()...)
	}
	return out
}

// Value is the classification as the CEL value `request.shell` / `shell(s)` (a map).
func (s Shell) Value() map[string]any {
	cmds := s.Commands
	if cmds == nil {
		cmds = []string{}
	}
	sqls := make([]any, 0, len(s.SQL))
	for _, q := range s.SQL {
		sqls = append(sqls, q.Value())
	}
	reasons := s.Reasons()
	if reasons == nil {
		reasons = []string{}
	}
	return map[string]any{
		"present": s.Present, "parsed": s.Parsed, "error": s.Error, "unchecked": s.Unchecked, "commands": cmds,
		"pipe_to_interpreter": s.PipeToInterpreter, "recursive_delete": s.RecursiveDelete,
		"disk_write": s.DiskWrite, "fork_bomb": s.ForkBomb, "substitution": s.Substitution,
		"dynamic_command": s.DynamicCommand, "device_redirect": s.DeviceRedirect,
		"sql": sqls, "dangerous": s.Present && s.Dangerous(), "reasons": reasons,
	}
}

// ClassifyShell parses cmd as a bash command line and classifies what it would run.
func ClassifyShell(cmd string) Shell {
	s := Shell{Present: true}
	if _, err := contain(func() (struct{}, error) { return struct{}{}, s.add(cmd, 0) }); err != nil {
		if errors.As(err, new(*limitError)) {
			return Shell{Present: true, Error: "shell command " + err.Error(), Unchecked: true}
		}
		return Shell{Present: true, Error: err.Error()}
	}
	s.Parsed = true
	return s
}

func (s *Shell) add(cmd string, depth int) error {
	if depth > maxShellDepth {
		return errShellDepth
	}
	if err := shellBound(cmd); err != nil {
		return err
	}
	f, err := syntax.NewParser(syntax.Variant(syntax.LangBash)).Parse(strings.NewReader(cmd), "")
	if err != nil {
		return err //nolint:wrapcheck // the parser's message is the reason shown
	}
	var inner error
	if err := shWalk(f, func(n syntax.Node) bool {
		if inner != nil {
			return false
		}
		switch v := n.(type) {
		case *syntax.CmdSubst, *syntax.ProcSubst:
			s.Substitution = true
		case *syntax.CallExpr:
			inner = s.call(v, depth)
		case *syntax.BinaryCmd:
			if v.Op == syntax.Pipe || v.Op == syntax.PipeAll {
				if name := stmtCommand(v.Y); interpreters[name] {
					s.PipeToInterpreter = true
				}
			}
		case *syntax.FuncDecl:
			if v.Name != nil && callsItself(v.Name.Value, v.Body) {
				s.ForkBomb = true
			}
		case *syntax.Redirect:
			switch v.Op {
			case syntax.RdrOut, syntax.AppOut, syntax.RdrClob, syntax.RdrAll, syntax.AppAll:
				if t, ok := literal(v.Word); ok && isDevice(t) {
					s.DeviceRedirect = true
				} else if !ok {
					s.Substitution = true
				}
			default:
				// Input redirections, duplications and here-documents write nothing.
			}
		}
		return true
	}); err != nil {
		return err
	}
	return inner
}

// shWalk is syntax.Walk that gives up below maxTreeDepth. Walk calls f(nil) after a node's
// children, which is where the depth goes back down.
func shWalk(root syntax.Node, f func(syntax.Node) bool) error {
	depth, over := 0, false
	syntax.Walk(root, func(n syntax.Node) bool {
		if n == nil {
			depth--
			return true
		}
		if over || depth >= maxTreeDepth {
			over = true
			return false
		}
		if !f(n) {
			return false
		}
		depth++
		return true
	})
	if over {
		return errTreeDepth
	}
	return nil
}

// interpreters run code read from their standard input.
var interpreters = map[string]bool{
	"sh": true, "bash": true, "zsh": true, "dash": true, "ksh": true, "fish": true, "csh": true, "tcsh": true,
	"python": true, "python2": true, "python3": true, "perl": true, "ruby": true, "node": true, "php": true,
	"lua": true, "pwsh": true, "osascript": true, "source": true, ".": true, "eval": true,
}

var diskTools = map[string]bool{
	"mkfs": true, "mke2fs": true, "mkswap": true, "wipefs": true, "shred": true, "fdisk": true,
	"sfdisk": true, "parted": true, "blkdiscard": true, "badblocks": true,
}

// call classifies one simple command after unwrapping its wrappers.
func (s *Shell) call(c *syntax.CallExpr, depth int) error {
	if len(c.Args) == 0 {
		return nil
	}
	argv := make([]string, len(c.Args))
	dyn := make([]bool, len(c.Args))
	for i, w := range c.Args {
		var lit bool
		argv[i], lit = literal(w)
		dyn[i] = !lit
	}
	i := unwrap(argv, dyn)
	if i >= len(argv) {
		return nil
	}
	if dyn[i] {
		s.DynamicCommand = true
		return nil
	}
	name := path.Base(argv[i])
	args := argv[i+1:]
	s.Commands = append(s.Commands, name)
	switch {
	case name == "eval" || name == "source" || name == ".":
		s.DynamicCommand = true
	case interpreters[name]:
		if code, ok := flagValue(args, "-c", ""); ok {
			return s.add(code, depth+1)
		}
	case name == "rm":
		for _, a := range args {
			if a == "--" {
				break
			}
			if a == "--recursive" || (strings.HasPrefix(a, "-") && !strings.HasPrefix(a, "--") && strings.ContainsAny(a, "rR")) {
				s.RecursiveDelete = true
			}
		}
	case name == "find":
		for j, a := range args {
			if a == "-delete" || ((a == "-exec" || a == "-execdir" || a == "-ok") && j+1 < len(args) && path.Base(args[j+1]) == "rm") {
				s.RecursiveDelete = true
			}
		}
	case name == "dd":
		for _, a := range args {
			if t, ok := strings.CutPrefix(a, "of="); ok && isDevice(t) {
				s.DiskWrite = true
			}
		}
	case diskTools[name] || strings.HasPrefix(name, "mkfs."):
		s.DiskWrite = true
	case name == "psql":
		if q, ok := flagValue(args, "-c", "--command"); ok {
			s.SQL = append(s.SQL, ClassifySQL(Postgres, q))
		}
	case name == "mysql" || name == "mariadb":
		if q, ok := flagValue(args, "-e", "--execute"); ok {
			s.SQL = append(s.SQL, ClassifySQL(MySQL, q))
		}
	}
	return nil
}

// unwrap returns the index of the effective command in argv, skipping wrappers
// (sudo, doas, env, exec, command, builtin, nohup, nice, time, timeout, stdbuf, xargs) and
// their options, and env-style NAME=value assignments.
func unwrap(argv []string, dyn []bool) int {
	i := 0
	for i < len(argv) && !dyn[i] {
		name := path.Base(argv[i])
		valued := map[string]bool{}
		switch name {
		case "sudo", "doas":
			valued = map[string]bool{"-u": true, "-g": true, "-U": true, "-C": true, "-D": true, "-h": true, "-p": true, "-r": true, "-t": true}
		case "env":
			valued = map[string]bool{"-u": true, "-C": true, "-S": true}
		case "nice":
			valued = map[string]bool{"-n": true}
		case "timeout":
			valued = map[string]bool{"-s": true, "-k": true}
		case "xargs":
			valued = map[string]bool{"-I": true, "-n": true, "-P": true, "-L": true, "-d": true, "-E": true, "-s": true, "-a": true}
		case "stdbuf":
			valued = map[string]bool{"-i": true, "-o": true, "-e": true}
		case "exec", "command", "builtin", "nohup", "time", "setsid", "chroot":
		default:
			return i
		}
		i++
		for i < len(argv) && !dyn[i] {
			a := argv[i]
			switch {
			case a == "--":
				i++
				goto next
			case strings.HasPrefix(a, "-") && len(a) > 1:
				i++
				if valued[a] {
					i++
				}
			case strings.Contains(a, "=") && (name == "env" || name == "sudo"):
				i++
			case name == "timeout" || name == "chroot":
				i++ // the duration or the new root
				goto next
			default:
				goto next
			}
		}
	next:
	}
	return i
}

// flagValue finds the value of a short flag (-c x, -cx) or long flag (--command=x, --command x).
func flagValue(args []string, short, long string) (string, bool) {
	for j, a := range args {
		switch {
		case a == short || (long != "" && a == long):
			if j+1 < len(args) {
				return args[j+1], true
			}
		case long != "" && strings.HasPrefix(a, long+"="):
			return strings.TrimPrefix(a, long+"="), true
		case strings.HasPrefix(a, short) && len(a) > len(short) && !strings.HasPrefix(a, "--"):
			return a[len(short):], true
		case strings.HasPrefix(a, "-") && !strings.HasPrefix(a, "--") && strings.HasSuffix(a, short[1:]) && j+1 < len(args):
			return args[j+1], true // clustered flags ending in the letter, e.g. bash -lc 'cmd'
		}
	}
	return "", false
}

// literal returns the word with quotes and escapes removed, false when any part of it is
// computed at run time (parameter expansion, substitution, arithmetic).
func literal(w *syntax.Word) (string, bool) {
	if w == nil {
		return "", false
	}
	var b strings.Builder
	for _, p := range w.Parts {
		switch v := p.(type) {
		case *syntax.Lit:
			b.WriteString(unescape(v.Value))
		case *syntax.SglQuoted:
			b.WriteString(v.Value)
		case *syntax.DblQuoted:
			for _, q := range v.Parts {
				l, ok := q.(*syntax.Lit)
				if !ok {
					return b.String(), false
				}
				b.WriteString(l.Value)
			}
		default:
			return b.String(), false
		}
	}
	return b.String(), true
}

func unescape(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+1 < len(s) {
			i++
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

func stmtCommand(st *syntax.Stmt) string {
	if st == nil {
		return ""
	}
	c, ok := st.Cmd.(*syntax.CallExpr)
	if !ok {
		return ""
	}
	argv := make([]string, len(c.Args))
	dyn := make([]bool, len(c.Args))
	for i, w := range c.Args {
		var lit bool
		argv[i], lit = literal(w)
		dyn[i] = !lit
	}
	i := unwrap(argv, dyn)
	if i >= len(argv) || dyn[i] {
		return ""
	}
	return path.Base(argv[i])
}

func callsItself(name string, body *syntax.Stmt) bool {
	found := false
	// The body is part of a tree add already walked within maxTreeDepth.
	_ = shWalk(body, func(n syntax.Node) bool {
		if c, ok := n.(*syntax.CallExpr); ok && len(c.Args) > 0 {
			if l, ok := literal(c.Args[0]); ok && l == name {
				found = true
			}
		}
		return !found
	})
	return found
}

func isDevice(p string) bool {
	if !strings.HasPrefix(p, "/dev/") {
		return false
	}
	switch p {
	case "/dev/null", "/dev/stdout", "/dev/stderr", "/dev/tty", "/dev/zero":
		return false
	}
	return !strings.HasPrefix(p, "/dev/fd/")
}
