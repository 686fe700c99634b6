package policy

import (
	"errors"
	"path"
	"slices"
	"strings"

	"mvdan.cc/sh/v3/syntax"
)

// ShellClass is what a shell command line does, as the most severe of its commands.
// The classes are ordered: read < write < destructive < dynamic < unknown.
type ShellClass uint8

// Shell classes. A command is read-only only when every program it runs is on the
// allow-list of read-only programs with the options it is given.
const (
	ClassNone ShellClass = iota
	// ClassRead runs only known programs that read and print.
	ClassRead
	// ClassWrite creates or changes files or state (redirections, cp, mkdir, git commit,
	// curl -o or -d), without deleting anything.
	ClassWrite
	// ClassDestructive deletes, overwrites by moving, kills, or rewrites history or
	// devices (rm, mv, dd, kill, git push --force, kubectl delete, …).
	ClassDestructive
	// ClassDynamic runs code whose text is not in the command line, or is in another
	// language (bash script.sh, eval "$x", python -c, awk with system(), sed with e).
	ClassDynamic
	// ClassUnknown runs a program that is not on any list, or whose name or options are
	// only known at run time.
	ClassUnknown
)

var classNames = [...]string{"", "read", "write", "destructive", "dynamic", "unknown"}

func (c ShellClass) String() string { return classNames[c] }

// Shell is the classification of one shell command line. Every command (in pipelines,
// lists, substitutions, function bodies, `bash -c` code, `find -exec`, …) is resolved
// through quoting and wrappers (sudo, env, xargs, timeout, …) to the program that runs.
type Shell struct {
	// Present is false when the tool carried no shell argument; all else is then empty.
	Present bool
	// Error is why the command did not parse; Parsed is false then.
	Error  string
	Parsed bool
	// Class is the most severe class of the commands; ClassUnknown when not parsed.
	Class ShellClass
	// Commands are the effective command names (base names), in order of appearance.
	Commands []string
	// Wrappers are the wrappers the commands ran under (sudo, env, xargs, timeout, …).
	Wrappers []string
	// Writes: some command creates or changes files or state (class write or above).
	Writes bool
	// Sends: some command sends data over the network (curl -d, -T, -F; wget --post-data).
	Sends bool
	// Destructive: some command deletes, kills or overwrites (rm, mv, dd, kill, …).
	Destructive bool
	// Dynamic: some command runs code the classifier cannot see (interpreters, eval).
	Dynamic bool
	// Unknown: some program is not on any list, or is only known at run time.
	Unknown bool
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
	// SQL holds every SQL text the command hands to psql or mysql (-c, -e, --command=,
	// here-documents, here-strings, echo/printf/cat piped in), classified in its dialect.
	SQL []SQL
	// Unchecked is set when the command was refused before parsing because it exceeds a
	// bound (size or nesting): Parsed is false and Error says which bound, as a reason.
	Unchecked bool

	reasons []string
	hops    int
	funcs   map[string]bool // functions the command line defines
}

// maxShellDepth bounds nested code (`sh -c`, eval, find -exec, here-documents into a
// shell); deeper commands are refused as unparsable.
const maxShellDepth = 8

// maxShellHops bounds the wrappers and nested commands resolved in one command line
// (sudo sudo … rm): past it the command is unknown.
const maxShellHops = 256

var errShellDepth = errors.New("sh -c nested too deeply")

// Dangerous reports any finding the embedded default policy blocks: a command that is not
// parsed, unknown, dynamic or destructive, and SQL refused as it is through a SQL tool.
func (s Shell) Dangerous() bool {
	return !s.Parsed || s.Class >= ClassDestructive || s.PipeToInterpreter || s.RecursiveDelete ||
		s.DiskWrite || s.ForkBomb || s.DynamicCommand || s.DeviceRedirect || slices.ContainsFunc(s.SQL, sqlRefused)
}

// sqlRefused mirrors the default policy's SQL rules (sql-unparsable, sql-destructive).
func sqlRefused(q SQL) bool {
	v := q.Value()
	flag := func(k string) bool { b, _ := v[k].(bool); return b }
	fns, _ := v["functions"].([]string)
	return !q.Parsed || flag("destructive") || flag("unbounded") || flag("privilege") || flag("program") ||
		flag("dynamic") || len(fns) > 0 || flag("unknown")
}

// Reasons are short findings for denial messages. They name programs only from the
// classifier's own tables, never other command text.
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
	for _, r := range s.reasons {
		if !slices.Contains(out, r) {
			out = append(out, r)
		}
	}
	for _, q := range s.SQL {
		out = append(out, q.Reasons()...)
	}
	return out
}

// Value is the classification as the CEL value `request.shell` / `shell(s)` (a map).
func (s Shell) Value() map[string]any {
	list := func(l []string) []string {
		if l == nil {
			return []string{}
		}
		return l
	}
	sqls := make([]any, 0, len(s.SQL))
	for _, q := range s.SQL {
		sqls = append(sqls, q.Value())
	}
	class := s.Class
	if s.Present && !s.Parsed {
		class = ClassUnknown
	}
	return map[string]any{
		"present": s.Present, "parsed": s.Parsed, "error": s.Error, "unchecked": s.Unchecked,
		"class": class.String(), "commands": list(s.Commands), "wrappers": list(s.Wrappers),
		"read_only": s.Present && s.Parsed && s.Class <= ClassRead && len(s.SQL) == 0,
		"writes":    s.Writes, "sends": s.Sends, "destructive": s.Destructive,
		"dynamic": s.Dynamic, "unknown": s.Present && (s.Unknown || !s.Parsed),
		"pipe_to_interpreter": s.PipeToInterpreter, "recursive_delete": s.RecursiveDelete,
		"disk_write": s.DiskWrite, "fork_bomb": s.ForkBomb, "substitution": s.Substitution,
		"dynamic_command": s.DynamicCommand, "device_redirect": s.DeviceRedirect,
		"sql": sqls, "dangerous": s.Present && s.Dangerous(), "reasons": list(s.Reasons()),
	}
}

// ClassifyShell parses cmd as a bash command line and classifies what it would run.
func ClassifyShell(cmd string) Shell {
	s := Shell{Present: true}
	if _, err := contain(func() (struct{}, error) { return struct{}{}, s.add(cmd, 0) }); err != nil {
		if errors.As(err, new(*limitError)) {
			return Shell{Present: true, Error: "shell command " + err.Error(), Unchecked: true, Class: ClassUnknown}
		}
		return Shell{Present: true, Error: err.Error(), Class: ClassUnknown}
	}
	s.Parsed = true
	if s.Class == ClassNone {
		// Nothing on the line ran a program or wrote: an input redirect alone ("<f"), an
		// empty script ("sh -c ''"). It reads at most, as an empty line does.
		s.mark(ClassRead, "")
	}
	return s
}

// mark raises the class and records why.
func (s *Shell) mark(c ShellClass, why string) {
	s.Class = max(s.Class, c)
	switch c {
	case ClassNone, ClassRead:
	case ClassWrite:
		s.Writes = true
	case ClassDestructive:
		s.Writes, s.Destructive = true, true
	case ClassDynamic:
		s.Dynamic = true
	case ClassUnknown:
		s.Unknown = true
	}
	if why != "" && !slices.Contains(s.reasons, why) {
		s.reasons = append(s.reasons, why)
	}
}

// stdin is what a command reads on its standard input, as far as it is known.
type stdin struct {
	given bool   // something is redirected or piped in
	known bool   // text is exactly what it reads
	text  string //
}

// add parses one command line (the whole argument, or code nested in it) and classifies it.
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
	if len(f.Stmts) == 0 && depth == 0 {
		s.mark(ClassRead, "")
	}
	piped := map[*syntax.Stmt]stdin{}
	var inner error
	if err := shWalk(f, func(n syntax.Node) bool {
		if inner != nil {
			return false
		}
		switch v := n.(type) {
		case *syntax.CmdSubst, *syntax.ProcSubst:
			s.Substitution = true
		case *syntax.Stmt:
			if c, ok := v.Cmd.(*syntax.CallExpr); ok {
				inner = s.call(c, v, piped[v], depth)
			}
		case *syntax.BinaryCmd:
			if v.Op == syntax.Pipe || v.Op == syntax.PipeAll {
				out, known := stmtOutput(v.X)
				piped[v.Y] = stdin{given: true, known: known, text: out}
			}
		case *syntax.FuncDecl:
			if v.Name != nil {
				if s.funcs == nil {
					s.funcs = map[string]bool{}
				}
				s.funcs[v.Name.Value] = true
				if callsItself(v.Name.Value, v.Body) {
					s.ForkBomb = true
					s.mark(ClassDestructive, "")
				}
			}
		case *syntax.DeclClause:
			for _, a := range v.Args {
				s.assign(a)
			}
		case *syntax.Redirect:
			s.redirect(v)
		case *syntax.ArithmCmd, *syntax.ArithmExp, *syntax.LetClause, *syntax.TestClause:
			// Bash evaluates array subscripts in arithmetic, so quoted text there runs:
			// let 'a[$(rm -rf ~)]=1'.
			s.mark(ClassRead, "")
			s.arithmeticCode(v)
		case *syntax.ParamExp:
			if v.Index != nil {
				s.arithmeticCode(v.Index)
			}
		case *syntax.CoprocClause:
			s.mark(ClassRead, "")
		}
		return true
	}); err != nil {
		return err
	}
	return inner
}

// redirect classifies where a redirection writes.
func (s *Shell) redirect(r *syntax.Redirect) {
	switch r.Op {
	case syntax.RdrOut, syntax.AppOut, syntax.RdrClob, syntax.AppClob, syntax.RdrAll, syntax.RdrAllClob,
		syntax.AppAll, syntax.AppAllClob, syntax.RdrInOut:
		if r.Word != nil && len(r.Word.Parts) == 1 {
			if _, ok := r.Word.Parts[0].(*syntax.ProcSubst); ok {
				return // >(cmd): a pipe into cmd, which is classified with the rest
			}
		}
		s.writeTo(word(r.Word), "redirects output into a file")
	case syntax.DplOut, syntax.DplIn:
		// >&2, 2>&1, >&-: a file descriptor. Bash also reads `>&word` as `&>word`.
		if t := word(r.Word); !t.lit || (t.s != "-" && strings.Trim(t.s, "0123456789-") != "") {
			s.writeTo(t, "redirects output into a file")
		}
	case syntax.Hdoc, syntax.DashHdoc, syntax.WordHdoc, syntax.RdrIn:
		// Input: read by the command, which call classifies with it.
	}
}

// writeTo classifies a write to the path p (a redirection or a program's output file).
func (s *Shell) writeTo(p arg, why string) {
	switch {
	case !p.lit:
		s.mark(ClassUnknown, "writes to a file named only at run time")
	case p.s == "" || p.s == "-" || p.s == "/dev/null" || p.s == "/dev/stdout" || p.s == "/dev/stderr" ||
		p.s == "/dev/tty" || strings.HasPrefix(p.s, "/dev/fd/"):
	case isDevice(p.s):
		s.DeviceRedirect = true
		s.mark(ClassDestructive, "")
	case systemPath(p.s):
		s.mark(ClassDestructive, "writes to a system path")
	case configPath(p.s):
		s.mark(ClassDynamic, "writes a file that shells or tools run or load as configuration")
	default:
		s.mark(ClassWrite, why)
	}
}

// systemPath is a path under a directory of the operating system.
func systemPath(p string) bool {
	p = path.Clean(p)
	for _, d := range []string{"/etc", "/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/boot", "/root", "/var/spool", "/var/lib", "/sys", "/proc", "/opt"} {
		if p == d || strings.HasPrefix(p, d+"/") {
			return true
		}
	}
	return p == "/"
}

// configFiles are dot-files and directories that shells and tools execute or load code or
// commands from: writing them plants code that runs later.
var configFiles = map[string]bool{
	".bashrc": true, ".bash_profile": true, ".bash_login": true, ".bash_logout": true, ".profile": true,
	".bash_aliases": true, ".zshrc": true, ".zshenv": true, ".zprofile": true, ".zlogin": true, ".inputrc": true,
	".gitconfig": true, ".git": true, ".ssh": true, ".config": true, ".curlrc": true, ".wgetrc": true,
	".psqlrc": true, ".my.cnf": true, ".mylogin.cnf": true, ".netrc": true, ".vimrc": true, ".exrc": true,
	".kube": true, ".docker": true, ".npmrc": true, ".envrc": true, ".pam_environment": true, ".xinitrc": true,
	".xprofile": true, ".lesskey": true, ".mailcap": true, ".terraformrc": true, ".pypirc": true, ".local": true,
	".gnupg": true, ".cargo": true, ".pip": true, ".pythonrc": true, ".irbrc": true, ".perldb": true,
	".selected_editor": true, ".editrc": true, ".gdbinit": true, ".Rprofile": true, ".sqliterc": true,
}

func configPath(p string) bool {
	for _, part := range strings.Split(p, "/") {
		if configFiles[part] || (strings.HasPrefix(part, ".") && strings.HasSuffix(part, "rc")) {
			return true
		}
	}
	return false
}

// riskyVar are variables that change which program runs or make a program run other code.
func riskyVar(name string) bool {
	switch name {
	case "PATH", "BASH_ENV", "ENV", "PROMPT_COMMAND", "PS0", "PS1", "PS2", "PS3", "PS4", "SHELLOPTS", "BASHOPTS",
		"IFS", "CDPATH", "GLOBIGNORE", "HOME", "SHELL", "PAGER", "MANPAGER", "EDITOR", "VISUAL", "LESSOPEN",
		"LESSCLOSE", "LESS", "TERMINFO", "PSQLRC", "PSQL_PAGER", "PSQL_EDITOR", "MYSQL_HOST", "SSH_ASKPASS",
		"SUDO_ASKPASS", "KUBECONFIG", "PGOPTIONS", "PGSERVICEFILE", "PGSYSCONFDIR", "MYSQL_TEST_LOGIN_FILE", "KUBE_EDITOR", "KUBECTL_EXTERNAL_DIFF", "XDG_CONFIG_HOME", "TMPDIR",
		"PYTHONSTARTUP", "PYTHONPATH", "PYTHONHOME", "NODE_OPTIONS", "NODE_PATH", "RUBYOPT", "RUBYLIB",
		"PERL5OPT", "PERL5LIB", "PERLLIB", "PERL5DB", "JAVA_TOOL_OPTIONS", "_JAVA_OPTIONS", "CURL_HOME",
		"WGETRC", "SYSTEMD_PAGER", "SYSTEMD_EDITOR", "BROWSER", "DOCKER_HOST", "DOCKER_CONFIG", "GCONV_PATH":
		return true
	}
	return strings.HasPrefix(name, "LD_") || strings.HasPrefix(name, "GIT_") || strings.HasPrefix(name, "BASH_FUNC_") ||
		strings.HasSuffix(name, "_COMMAND") || strings.HasPrefix(name, "DYLD_")
}

// codeInData reports a quoted literal that holds shell code: bash evaluates variables in
// arithmetic (`(( x ))`, `[[ x -eq 1 ]]`, array subscripts) and prompts, so a value such as
// 'a[$(rm -rf ~)]' runs when it is used.
func codeInData(v string) bool {
	return strings.Contains(v, "$(") || strings.Contains(v, "`") || strings.Contains(v, "${")
}

// arithmeticCode marks shell code in the quoted words of an arithmetic context.
func (s *Shell) arithmeticCode(n syntax.Node) {
	// The node is part of a tree add walks within maxTreeDepth.
	_ = shWalk(n, func(m syntax.Node) bool {
		if w, ok := m.(*syntax.Word); ok && codeInData(word(w).s) {
			s.mark(ClassDynamic, "evaluates shell code in arithmetic")
			return false
		}
		return true
	})
}

// assign classifies a variable assignment (standalone, before a command, or in
// export/declare/local/readonly).
func (s *Shell) assign(a *syntax.Assign) {
	if a == nil || a.Name == nil {
		return
	}
	if riskyVar(a.Name.Value) {
		s.mark(ClassDynamic, "sets a variable that changes what programs run")
		return
	}
	if a.Value != nil {
		if v := word(a.Value); codeInData(v.s) {
			s.mark(ClassDynamic, "stores shell code in a variable")
		}
	}
	if a.Array != nil {
		for _, e := range a.Array.Elems {
			if v := word(e.Value); codeInData(v.s) {
				s.mark(ClassDynamic, "stores shell code in a variable")
			}
		}
	}
}

// call classifies one simple command with its statement's redirections.
func (s *Shell) call(c *syntax.CallExpr, st *syntax.Stmt, piped stdin, depth int) error {
	for _, a := range c.Assigns {
		s.assign(a)
	}
	if len(c.Args) == 0 {
		s.mark(ClassRead, "")
		return nil
	}
	argv := make([]arg, len(c.Args))
	for i, w := range c.Args {
		argv[i] = word(w)
	}
	in := piped
	for _, r := range st.Redirs {
		switch r.Op {
		case syntax.Hdoc, syntax.DashHdoc:
			body, ok := heredoc(r)
			in = stdin{given: true, known: ok, text: body}
		case syntax.WordHdoc:
			w := word(r.Word)
			in = stdin{given: true, known: w.lit, text: w.s + "\n"}
		case syntax.RdrIn, syntax.RdrInOut:
			if r.N == nil || r.N.Value == "0" {
				in = stdin{given: true}
			}
		case syntax.DplIn:
			if r.N == nil || r.N.Value == "0" {
				in = stdin{given: true}
			}
		default:
			// Output redirections: redirect classifies them.
		}
	}
	return s.command(argv, in, depth)
}

// command classifies argv (after quote removal) reading in.
func (s *Shell) command(argv []arg, in stdin, depth int) error {
	for {
		s.hops++
		if s.hops > maxShellHops {
			s.mark(ClassUnknown, "too many wrappers or nested commands to check")
			return nil
		}
		if len(argv) == 0 {
			s.mark(ClassRead, "")
			return nil
		}
		name, ok := progName(argv[0])
		if !ok {
			if !argv[0].lit {
				s.DynamicCommand = true
				s.mark(ClassUnknown, "")
			} else {
				s.Commands = append(s.Commands, path.Base(argv[0].s))
				s.mark(ClassUnknown, "runs a program outside the system directories")
			}
			return nil
		}
		if w, ok := wrappers[name]; ok {
			next, done := w(s, argv[1:])
			s.Wrappers = append(s.Wrappers, name)
			if done {
				return nil
			}
			if next.code != nil {
				return s.code(*next.code, depth)
			}
			argv = next.argv
			continue
		}
		s.Commands = append(s.Commands, name)
		if _, known := programs[name]; !known && s.funcs[name] {
			// A function the command line defines: its body is classified where it is defined.
			s.mark(ClassRead, "")
			return nil
		}
		c := &cmdCtx{s: s, name: name, args: argv[1:], in: in, depth: depth}
		if p, ok := programs[name]; ok {
			return p(c)
		}
		switch {
		case strings.HasPrefix(name, "mkfs."):
			s.DiskWrite = true
			s.mark(ClassDestructive, "")
		default:
			s.mark(ClassUnknown, "runs a program that is not on the allow-list")
		}
		return nil
	}
}

// code classifies shell code given as text (bash -c, eval, su -c, watch, a here-document
// into a shell). Text known only at run time is dynamic.
func (s *Shell) code(text arg, depth int) error {
	if !text.lit {
		s.mark(ClassDynamic, "runs shell code known only at run time")
		return nil
	}
	return s.add(text.s, depth+1)
}

// systemDirs are where a program named by path is taken for the program of that base name.
var systemDirs = map[string]bool{
	"/bin": true, "/usr/bin": true, "/sbin": true, "/usr/sbin": true, "/usr/local/bin": true, "/usr/local/sbin": true,
}

// progName returns the program a command word names: its base name when it is a bare name
// or a path in a system directory.
func progName(a arg) (string, bool) {
	if !a.lit || a.s == "" {
		return "", false
	}
	if !strings.Contains(a.s, "/") {
		return a.s, true
	}
	dir, base := path.Split(a.s)
	if base == "" || !systemDirs[path.Clean(dir)] {
		return "", false
	}
	return base, true
}

// stmtOutput returns what a statement writes to its standard output when that is fixed
// text: echo or printf of literal words, or cat of a here-document.
func stmtOutput(st *syntax.Stmt) (string, bool) {
	if st == nil {
		return "", false
	}
	switch c := st.Cmd.(type) {
	case *syntax.BinaryCmd:
		if c.Op == syntax.Pipe || c.Op == syntax.PipeAll {
			return stmtOutput(c.Y)
		}
		return "", false
	case *syntax.CallExpr:
		if len(c.Args) == 0 {
			return "", false
		}
		argv := make([]string, len(c.Args))
		for i, w := range c.Args {
			a := word(w)
			if !a.lit {
				return "", false
			}
			argv[i] = a.s
		}
		var in *stdin
		for _, r := range st.Redirs {
			switch r.Op {
			case syntax.Hdoc, syntax.DashHdoc:
				body, ok := heredoc(r)
				in = &stdin{given: true, known: ok, text: body}
			case syntax.WordHdoc:
				w := word(r.Word)
				in = &stdin{given: true, known: w.lit, text: w.s + "\n"}
			case syntax.RdrOut, syntax.AppOut, syntax.RdrClob, syntax.RdrAll, syntax.AppAll, syntax.DplOut:
				return "", false
			default:
				in = &stdin{given: true}
			}
		}
		switch argv[0] {
		case "echo":
			return echoOutput(argv[1:])
		case "printf":
			if len(argv) == 2 && !strings.ContainsAny(argv[1], `%\`) {
				return argv[1], true
			}
		case "cat":
			if len(argv) == 1 && in != nil && in.known {
				return in.text, true
			}
		}
	}
	return "", false
}

func echoOutput(args []string) (string, bool) {
	nl := "\n"
	for len(args) > 0 && (args[0] == "-n" || args[0] == "-E") {
		if args[0] == "-n" {
			nl = ""
		}
		args = args[1:]
	}
	out := strings.Join(args, " ")
	if len(args) > 0 && strings.HasPrefix(args[0], "-") {
		return "", false // -e and other flags change the output
	}
	return out + nl, true
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
