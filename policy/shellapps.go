package policy

import (
	"slices"
	"strings"
)

// findProg: find reads, unless an action deletes, writes or runs a command; the command
// of -exec/-execdir/-ok/-okdir is classified like any other, with {} as a run-time word.
func findProg(c *cmdCtx) error {
	args := c.args
	c.read()
	for i := 0; i < len(args); i++ {
		a := args[i]
		if !a.lit {
			if a.opt() {
				c.unknown("gets an expression known only at run time")
				return nil
			}
			continue
		}
		switch a.s {
		case "-delete":
			c.s.RecursiveDelete = true
			c.s.mark(ClassDestructive, "")
		case "-fprint", "-fprint0", "-fprintf", "-fls":
			if i+1 < len(args) {
				c.s.writeTo(args[i+1], "find writes a file")
			}
		case "-exec", "-execdir", "-ok", "-okdir":
			j := i + 1
			for j < len(args) && !(args[j].lit && (args[j].s == ";" || args[j].s == "+")) {
				j++
			}
			sub := make([]arg, 0, j-i-1)
			for _, w := range args[i+1 : j] {
				if w.lit && strings.Contains(w.s, "{}") {
					w = arg{s: "./"} // a path find passes: it starts with the start point
				}
				sub = append(sub, w)
			}
			if c.depth+1 > maxShellDepth {
				return errShellDepth
			}
			if err := c.s.command(sub, stdin{}, c.depth+1); err != nil {
				return err
			}
			if len(sub) > 0 {
				if n, ok := progName(sub[0]); ok && n == "rm" {
					c.s.RecursiveDelete = true
				}
			}
			i = j
		}
	}
	return nil
}

// sedProg: sed reads unless it edits in place, or its script writes files (w, W, s///w)
// or runs commands (e, s///e). A script from a file is unknown.
func sedProg(c *cmdCtx) error {
	p := c.parse(optSpec{short: "nrEsuzi::l:e:f:", long: []string{
		"quiet", "silent", "debug", "expression=",
		"file=", "follow-symlinks", "in-place?", "line-length=", "null-data", "zero-terminated", "posix",
		"regexp-extended", "separate", "sandbox", "unbuffered", "help", "version",
	}})
	if c.wildOpts(p) {
		return nil
	}
	if p.has("f", "file") {
		c.unknown("runs a script from a file")
		return nil
	}
	scripts := p.values("e", "expression")
	if len(scripts) == 0 {
		if len(p.operands) == 0 {
			c.unknown("has no script")
			return nil
		}
		scripts = p.operands[:1]
	}
	c.read()
	if !p.has("sandbox") {
		for _, sc := range scripts {
			if !sc.lit {
				c.dynamic("runs a script known only at run time")
				return nil
			}
			switch sedScript(sc.s) {
			case sedExec:
				c.dynamic("script runs commands (e)")
			case sedWrite:
				c.write("script writes files (w)")
			case sedUnsure:
				c.unknown("script could not be read")
			}
		}
	}
	if p.has("i", "in-place") {
		c.write("edits files in place")
	}
	return nil
}

const (
	sedPlain = iota
	sedWrite
	sedExec
	sedUnsure
)

// sedScript scans a sed script for the commands and flags that write files or run
// commands. It follows GNU sed's grammar far enough to skip addresses, regexes,
// replacements and text arguments; what it cannot follow is sedUnsure.
func sedScript(s string) int {
	out := sedPlain
	i := 0
	skipRegex := func(delim byte) bool {
		for i < len(s) {
			switch s[i] {
			case '\\':
				i += 2
				continue
			case delim:
				i++
				return true
			case '\n':
				if delim != '\n' {
					return false
				}
			}
			i++
		}
		return false
	}
	for i < len(s) {
		c := s[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == ';' || c == '}' || c == '!' || c == '{':
			i++
			continue
		case c == '#':
			for i < len(s) && s[i] != '\n' {
				i++
			}
			continue
		case c >= '0' && c <= '9' || c == '$' || c == ',' || c == '~' || c == '+':
			i++
			continue
		case c == '/':
			i++
			if !skipRegex('/') {
				return sedUnsure
			}
			for i < len(s) && (s[i] == 'I' || s[i] == 'M') {
				i++
			}
			continue
		case c == '\\':
			if i+1 >= len(s) {
				return sedUnsure
			}
			d := s[i+1]
			i += 2
			if !skipRegex(d) {
				return sedUnsure
			}
			continue
		}
		// A command letter.
		i++
		switch c {
		case 's', 'y':
			if i >= len(s) || s[i] == '\\' || s[i] == '\n' {
				return sedUnsure
			}
			d := s[i]
			i++
			for range 2 { // the pattern, then the replacement
				if !skipRegex(d) {
					return sedUnsure
				}
			}
			if c == 'y' {
				continue
			}
			for i < len(s) && strings.IndexByte(";\n}", s[i]) < 0 {
				switch s[i] {
				case 'e':
					return sedExec
				case 'w':
					out = max(out, sedWrite)
					for i < len(s) && s[i] != '\n' {
						i++
					}
					continue
				case 'g', 'p', 'i', 'I', 'm', 'M', ' ', '\t', '0', '1', '2', '3', '4', '5', '6', '7', '8', '9':
				default:
					return sedUnsure
				}
				i++
			}
		case 'e':
			return sedExec
		case 'w', 'W':
			out = max(out, sedWrite)
			for i < len(s) && s[i] != '\n' {
				i++
			}
		case 'a', 'i', 'c', 'r', 'R', ':', 'b', 't', 'T', 'v':
			// Text, a file to read, or a label: to the end of the line (labels also end at ;).
			for i < len(s) && s[i] != '\n' && !(c != 'a' && c != 'i' && c != 'c' && c != 'r' && c != 'R' && s[i] == ';') {
				if s[i] == '\\' {
					i++
				}
				i++
			}
		case 'q', 'Q', 'l', 'L':
			for i < len(s) && s[i] >= '0' && s[i] <= '9' || i < len(s) && s[i] == ' ' {
				i++
			}
		case 'd', 'D', 'g', 'G', 'h', 'H', 'n', 'N', 'p', 'P', 'x', 'z', '=', 'F':
		default:
			return sedUnsure
		}
	}
	return out
}

// awkProg: awk reads unless its program runs commands (system(), pipes, getline from a
// command, indirect calls) or writes files (print > file). A program from a file is unknown.
func awkProg(c *cmdCtx) error {
	p := c.parse(optSpec{short: "F:v:f:E:i:l:bcCd::D::eghL::MnNo::p::PrsStVW:", long: []string{
		"field-separator=",
		"assign=", "file=", "exec=", "include=", "load=", "dump-variables?", "debug?", "profile?", "pretty-print?",
		"source=", "sandbox", "characters-as-bytes", "traditional", "posix", "lint?", "bignum", "help", "version",
	}})
	if c.wildOpts(p) {
		return nil
	}
	switch {
	case p.has("version", "V", "help", "h") && len(p.operands) == 0:
		c.read()
		return nil
	case p.has("f", "file", "E", "exec", "i", "include"):
		c.unknown("runs a program from a file")
		return nil
	case p.has("l", "load"):
		c.dynamic("loads an extension")
		return nil
	case len(p.values("W")) > 0:
		c.unknown("has implementation options (mawk -W exec reads a program file)")
		return nil
	case p.has("d", "dump-variables", "o", "pretty-print", "p", "profile", "D", "debug"):
		c.write("writes a dump or profile file")
	}
	progs := p.values("source", "e")
	if len(progs) == 0 {
		if len(p.operands) == 0 {
			c.unknown("has no program")
			return nil
		}
		progs = p.operands[:1]
	}
	c.read()
	for _, a := range p.values("v", "assign") {
		if codeInData(a.s) {
			c.dynamic("assigns shell code")
		}
	}
	for _, pr := range progs {
		if !pr.lit {
			c.dynamic("runs a program known only at run time")
			return nil
		}
		switch awkScript(pr.s) {
		case sedExec:
			if !p.has("sandbox") {
				c.dynamic("program runs commands (system, pipes)")
			}
		case sedWrite:
			if !p.has("sandbox") {
				c.write("program writes files")
			}
		}
	}
	return nil
}

// awkScript finds system(), command pipes (cmd | getline, print | cmd, |&), indirect
// calls (@f()), and output redirections of print and printf (print > file). Strings and
// regex literals are skipped; a comparison with > outside print is not a redirection.
func awkScript(s string) int {
	out := sedPlain
	inPrint, parens := false, 0
	prevSig := byte(0) // the last significant character, to tell a regex from division
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '"':
			for i++; i < len(s) && s[i] != '"'; i++ {
				if s[i] == '\\' {
					i++
				}
			}
			prevSig = '"'
			continue
		case c == '/' && (prevSig == 0 || strings.IndexByte("(,{;!~&|=\n", prevSig) >= 0):
			for i++; i < len(s) && s[i] != '/'; i++ {
				if s[i] == '\\' {
					i++
				}
			}
			prevSig = '/'
			continue
		case c == '#':
			for i < len(s) && s[i] != '\n' {
				i++
			}
			continue
		case c == '@':
			return sedExec
		case c == '|':
			if i+1 < len(s) && s[i+1] == '|' {
				i++
				break
			}
			return sedExec
		case c == '>':
			if inPrint && parens == 0 {
				out = sedWrite
			}
		case c == '(':
			parens++
		case c == ')':
			parens--
		case c == ';' || c == '}' || c == '{' || c == '\n':
			inPrint, parens = false, 0
		case isWordByte(c):
			j := i
			for j < len(s) && isWordByte(s[j]) {
				j++
			}
			switch s[i:j] {
			case "system":
				return sedExec
			case "print", "printf":
				inPrint, parens = true, 0
			}
			i = j - 1
			prevSig = 'a'
			continue
		}
		if c != ' ' && c != '\t' {
			prevSig = c
		}
	}
	return out
}

// curlProg: a GET that prints is read; output files write; uploads and request bodies send
// data (write); DELETE is destructive; a config file is unknown.
func curlProg(c *cmdCtx) error {
	p := c.parse(optSpec{short: "a::A:b:c:C:d:D:e:E:F:H:K:m:o:Q:r:t:T:u:U:w:x:X:y:Y:z:", long: []string{
		"output=", "remote-name", "remote-name-all", "output-dir=", "dump-header=", "cookie-jar=", "stderr=",
		"trace=", "trace-ascii=", "libcurl=", "etag-save=", "hsts=", "alt-svc=", "ssl-sessions=", "create-dirs", "config=",
		"data=", "data-ascii=", "data-binary=", "data-raw=", "data-urlencode=", "json=", "form=", "form-string=",
		"upload-file=", "quote=", "request=", "header=", "user=", "user-agent=", "referer=", "cookie=", "proxy=",
		"max-time=", "write-out=", "range=", "cert=", "key=", "cacert=", "connect-timeout=", "retry=", "resolve=",
		"connect-to=", "url=", "limit-rate=", "interface=", "netrc-file=", "variable=", "expand-url=", "get",
		"head", "silent", "show-error", "fail", "location", "verbose", "include", "insecure", "compressed",
		"mail-rcpt=", "mail-from=", "proxy-user=", "oauth2-bearer=", "aws-sigv4=", "max-filesize=", "retry-delay=",
		"retry-max-time=", "cacert=", "capath=", "request-target=", "unix-socket=", "abstract-unix-socket=",
	}})
	c.read()
	if c.wildOpts(p) {
		return nil
	}
	if p.has("K", "config", "q") {
		c.unknown("reads options from a file")
		return nil
	}
	for _, o := range p.opts {
		if strings.HasPrefix(o.name, "expand-") {
			c.unknown("expands option values at run time")
			return nil
		}
	}
	for _, w := range p.values("w", "write-out") {
		if strings.Contains(w.s, "%output{") {
			c.write("writes a file from --write-out")
		}
	}
	for _, v := range p.values("o", "output", "D", "dump-header", "c", "cookie-jar", "stderr", "trace",
		"trace-ascii", "libcurl", "etag-save", "hsts", "alt-svc", "ssl-sessions", "output-dir") {
		c.s.writeTo(v, "curl writes a file")
	}
	if p.has("O", "remote-name", "remote-name-all", "J") {
		c.write("saves the response to a file")
	}
	if p.has("d", "data", "data-ascii", "data-binary", "data-raw", "data-urlencode", "json", "F", "form",
		"form-string", "T", "upload-file", "Q", "quote", "mail-rcpt") {
		c.s.Sends = true
		c.write("sends data")
	}
	for _, m := range p.values("X", "request") {
		switch strings.ToUpper(m.s) {
		case "GET", "HEAD", "OPTIONS":
		case "DELETE":
			c.s.Sends = true
			c.destroy("sends a DELETE request")
		default:
			c.s.Sends = true
			c.write("sends a " + "request with a body method")
		}
	}
	return nil
}

// wgetProg: wget saves what it fetches unless the output is standard output.
func wgetProg(c *cmdCtx) error {
	p := c.parse(optSpec{short: "O:o:a:e:i:P:t:T:U:w:qvdcNrlkKpmhVS", long: []string{
		"output-document=",
		"output-file=", "append-output=", "execute=", "input-file=", "directory-prefix=", "tries=", "timeout=",
		"user-agent=", "wait=", "post-data=", "post-file=", "method=", "body-data=", "body-file=", "spider",
		"use-askpass=", "config=", "header=", "quiet", "help", "version", "delete-after", "recursive", "mirror", "no-check-certificate",
	}})
	if c.wildOpts(p) {
		return nil
	}
	switch {
	case p.has("use-askpass"):
		c.dynamic("runs an askpass program")
		return nil
	case p.has("e", "execute", "config"):
		c.unknown("runs wgetrc commands")
		return nil
	case p.has("h", "help", "V", "version"):
		c.read()
		return nil
	}
	c.read()
	if p.has("post-data", "post-file", "body-data", "body-file", "method") {
		c.s.Sends = true
		c.write("sends data")
	}
	for _, v := range p.values("o", "output-file", "a", "append-output") {
		c.s.writeTo(v, "wget writes a log file")
	}
	outs := p.values("O", "output-document")
	switch {
	case p.has("spider"):
	case len(outs) > 0:
		for _, v := range outs {
			c.s.writeTo(v, "wget saves a download")
		}
	default:
		c.write("saves downloads")
	}
	return nil
}

// gitValued are git's global options that take a separate value.
var gitValued = map[string]bool{"-C": true, "--git-dir": true, "--work-tree": true, "--namespace": true, "--super-prefix": true, "--list-cmds": true}

// gitProg classifies git by subcommand. Options that make git run programs (-c, --exec-path,
// --config-env) are dynamic; an unknown subcommand may be an alias and is unknown.
func gitProg(c *cmdCtx) error {
	args := c.args
	i := 0
	for ; i < len(args); i++ {
		a := args[i]
		if !a.lit {
			c.unknown("gets options known only at run time")
			return nil
		}
		if !strings.HasPrefix(a.s, "-") {
			break
		}
		name, val, eq := strings.Cut(a.s, "=")
		switch {
		case name == "-c" || strings.HasPrefix(name, "--config-env") || (name == "--exec-path" && eq && val != ""):
			c.dynamic("-c or --config-env sets configuration that can run commands")
			return nil
		case name == "--version" || name == "--help" || name == "--exec-path" || name == "--html-path" || name == "--man-path" || name == "--info-path":
			c.read()
			return nil
		case gitValued[name] && !eq:
			i++
		}
	}
	if i >= len(args) {
		c.read()
		return nil
	}
	sub := args[i].s
	rest := args[i+1:]
	has := func(names ...string) bool {
		for _, a := range rest {
			if !a.lit {
				if a.opt() {
					return true
				}
				continue
			}
			if a.s == "--" {
				return false
			}
			for _, n := range names {
				if a.s == n || (strings.HasPrefix(n, "--") && strings.HasPrefix(a.s, n+"=")) ||
					(strings.HasPrefix(n, "--") && len(a.s) > 3 && strings.HasPrefix(n, strings.SplitN(a.s, "=", 2)[0])) ||
					(len(n) == 2 && n[0] == '-' && n[1] != '-' && len(a.s) > 2 && a.s[0] == '-' && a.s[1] != '-' && strings.IndexByte(a.s[1:], n[1]) >= 0) {
					return true
				}
			}
		}
		return false
	}
	operands := func() []string {
		var out []string
		for _, a := range rest {
			if a.lit && !strings.HasPrefix(a.s, "-") {
				out = append(out, a.s)
			}
		}
		return out
	}
	switch sub {
	case "status", "log", "show", "diff", "rev-parse", "ls-files", "ls-tree", "blame", "describe", "shortlog",
		"cat-file", "rev-list", "reflog", "grep", "whatchanged", "name-rev", "merge-base", "ls-remote",
		"show-ref", "for-each-ref", "count-objects", "help", "version", "var", "check-ignore", "show-branch",
		"cherry", "range-diff", "annotate", "diff-tree", "diff-files", "diff-index", "verify-commit", "verify-tag", "fsck":
		switch {
		case has("--output"):
			c.write("writes its output to a file")
		case has("--ext-diff", "-O", "--open-files-in-pager", "--textconv"):
			c.dynamic("runs external programs")
		case sub == "reflog" && len(operands()) > 0 && (operands()[0] == "expire" || operands()[0] == "delete"):
			c.destroy("deletes reflog entries")
		default:
			c.read()
		}
	case "branch":
		switch {
		case has("-D", "-d", "--delete", "-M", "-C", "--force", "-f"):
			c.destroy("deletes or overwrites branches")
		case len(operands()) > 0 || has("-m", "-c", "--move", "--copy", "--set-upstream-to", "-u", "--unset-upstream", "--edit-description"):
			c.write("creates or changes branches")
		default:
			c.read()
		}
	case "tag":
		switch {
		case has("-d", "--delete", "-f", "--force"):
			c.destroy("deletes or overwrites tags")
		case len(operands()) > 0 && !has("-l", "--list", "-v", "--verify", "--contains", "--points-at"):
			c.write("creates tags")
		default:
			c.read()
		}
	case "remote":
		ops := operands()
		switch {
		case len(ops) == 0 || ops[0] == "show" || ops[0] == "get-url":
			c.read()
		case ops[0] == "remove" || ops[0] == "rm" || ops[0] == "prune":
			c.destroy("removes remotes or branches")
		default:
			c.write("changes remotes")
		}
	case "config":
		switch {
		case has("--get", "--get-all", "--get-regexp", "-l", "--list", "--get-urlmatch", "--show-origin") && !has("--add", "--unset", "--unset-all", "--replace-all", "--rename-section", "--remove-section", "-e", "--edit"):
			c.read()
		case len(operands()) == 1 && !has("--unset", "--unset-all", "--remove-section", "--rename-section", "-e", "--edit"):
			c.read()
		default:
			c.dynamic("changes configuration that can run commands")
		}
	case "stash":
		ops := operands()
		switch {
		case len(ops) > 0 && (ops[0] == "list" || ops[0] == "show"):
			c.read()
		case len(ops) > 0 && (ops[0] == "drop" || ops[0] == "clear"):
			c.destroy("deletes stashes")
		default:
			c.write("stashes changes")
		}
	case "push":
		ops := operands()
		force := has("-f", "--force", "--force-with-lease", "--force-if-includes", "--delete", "-d", "--mirror", "--prune")
		for _, o := range ops[min(1, len(ops)):] {
			if strings.HasPrefix(o, "+") || strings.HasPrefix(o, ":") {
				force = true
			}
		}
		if has("--receive-pack", "--exec") {
			c.dynamic("runs a chosen remote program")
		} else if force {
			c.destroy("rewrites or deletes remote history")
		} else {
			c.s.Sends = true
			c.write("pushes commits")
		}
	case "reset":
		if has("--hard", "--merge", "--keep") {
			c.destroy("discards changes")
		} else {
			c.write("moves the index or HEAD")
		}
	case "clean":
		if has("-n", "--dry-run") && !has("-f", "--force") {
			c.read()
		} else {
			c.destroy("deletes untracked files")
		}
	case "checkout", "switch", "restore":
		if slices.ContainsFunc(rest, func(a arg) bool { return a.s == "--" }) || (len(operands()) == 1 && operands()[0] == ".") || has("-f", "--force", "-B", "-C", "--discard-changes", "--overwrite-ignore", "--worktree", "-W", "--staged", "-S") || sub == "restore" || (sub == "checkout" && len(operands()) > 1) {
			c.destroy("discards working-tree changes")
		} else {
			c.write("switches branches")
		}
	case "rm":
		c.destroy("deletes files")
	case "mv":
		c.destroy("moves files")
	case "gc", "prune", "filter-branch", "filter-repo", "update-ref", "replace":
		if has("-d", "--delete", "--prune", "--aggressive") || sub != "update-ref" {
			c.destroy("rewrites or prunes history")
		} else {
			c.write("changes refs")
		}
	case "add", "commit", "fetch", "init", "clone", "merge", "rebase", "cherry-pick", "revert", "pull", "am",
		"apply", "mergetool", "notes", "worktree", "submodule", "sparse-checkout", "bisect", "format-patch", "archive", "bundle", "pack-refs", "repack", "maintenance", "lfs", "mailinfo":
		switch {
		case has("--exec", "-x", "--upload-pack", "-u", "--receive-pack", "--config", "--template", "--strategy", "-s", "--gpg-sign", "-S", "--tool", "--extcmd"):
			c.dynamic("runs chosen programs")
		case sub == "rebase" || sub == "am" || sub == "bisect" || sub == "submodule" || sub == "mergetool" || sub == "lfs":
			c.dynamic("can run hooks or chosen programs")
		case (sub == "format-patch" || sub == "archive") && !has("-o", "--output", "--output-directory", "--stdout"):
			c.write("writes files")
		default:
			c.write("changes the repository")
		}
	default:
		c.unknown("has an unknown subcommand (it may be an alias)")
	}
	return nil
}

// kubectlValued are kubectl's global options that take a separate value.
var kubectlValued = map[string]bool{
	"-n": true, "--namespace": true, "--context": true, "--cluster": true, "--user": true, "--kubeconfig": true,
	"-s": true, "--server": true, "--token": true, "--as": true, "--as-group": true, "--as-uid": true,
	"--request-timeout": true, "--cache-dir": true, "--certificate-authority": true, "--client-certificate": true,
	"--client-key": true, "--tls-server-name": true, "-v": true, "--v": true, "--log-file": true, "--profile": true, "--profile-output": true,
}

func kubectlProg(c *cmdCtx) error {
	i, ok := subcommand(c.args, kubectlValued)
	if !ok {
		c.unknown("gets a subcommand known only at run time")
		return nil
	}
	for _, a := range c.args {
		if strings.HasPrefix(a.s, "--kubeconfig") || strings.HasPrefix(a.s, "--profile-output") {
			c.unknown("reads configuration from a chosen file")
			return nil
		}
	}
	if i >= len(c.args) {
		c.read()
		return nil
	}
	sub := c.args[i].s
	next := ""
	if i+1 < len(c.args) && c.args[i+1].lit {
		next = c.args[i+1].s
	}
	switch sub {
	case "get", "describe", "logs", "top", "explain", "version", "api-resources", "api-versions",
		"cluster-info", "events", "wait", "diff", "completion", "help":
		c.read()
	case "auth":
		if next == "can-i" || next == "whoami" {
			c.read()
		} else {
			c.write("changes authorization")
		}
	case "config":
		switch {
		case next == "view" || next == "current-context" || strings.HasPrefix(next, "get-"):
			c.read()
		default:
			c.write("changes kubeconfig")
		}
	case "rollout":
		if next == "status" || next == "history" {
			c.read()
		} else {
			c.write("changes rollouts")
		}
	case "delete", "drain", "replace":
		c.destroy("deletes or replaces resources")
	case "apply", "create", "patch", "edit", "scale", "autoscale", "set", "label", "annotate", "expose",
		"cordon", "uncordon", "taint", "certificate", "proxy", "port-forward":
		c.write("changes resources")
	case "exec", "run", "debug", "attach", "cp", "plugin", "kustomize":
		c.dynamic("runs commands or code in the cluster")
	default:
		c.unknown("has an unknown subcommand (it may be a plugin)")
	}
	return nil
}

// psqlProg hands every SQL text psql runs to the SQL classifier: each -c (psql runs them
// all, in order), here-documents, here-strings and literal text piped in. A file (-f) or
// input known only at run time is unknown; psql meta-commands other than \d… and \l are
// dynamic (\! runs a shell, \o and \w write files, \gexec runs query output as SQL).
func psqlProg(c *cmdCtx) error {
	p := c.parse(optSpec{short: "ac:d:eEf:F:h:HlL:no:p:P:qR:sStT:U:v:VwWxX01?", long: []string{
		"echo-all",
		"command=", "dbname=", "echo-queries", "echo-hidden", "file=", "field-separator=", "host=", "html",
		"list", "log-file=", "no-readline", "output=", "port=", "pset=", "quiet", "record-separator=",
		"single-step", "single-line", "tuples-only", "table-attr=", "username=", "set=", "variable=", "version",
		"no-password", "password", "expanded", "no-psqlrc", "field-separator-zero", "record-separator-zero",
		"help?", "csv", "single-transaction",
	}})
	c.read()
	if c.wildOpts(p) {
		return nil
	}
	for _, v := range p.values("o", "output", "L", "log-file") {
		c.s.writeTo(v, "psql writes its output to a file")
	}
	if p.has("V", "version", "?", "help") || (p.has("l", "list") && len(p.values("c", "command", "f", "file")) == 0) {
		return nil
	}
	cmds := p.values("c", "command")
	if p.has("f", "file") {
		c.unknown("runs SQL from a file")
		return nil
	}
	if len(cmds) == 0 {
		if !c.in.known {
			c.unknown("reads SQL that is not in the command line")
			return nil
		}
		cmds = []arg{{s: c.in.text, lit: true}}
	}
	for _, q := range cmds {
		if !q.lit {
			c.unknown("runs SQL known only at run time")
			continue
		}
		if psqlMeta(q.s) {
			c.dynamic("meta-commands can run programs or write files")
			continue
		}
		if sql := psqlSQL(q.s); sql != "" {
			c.sql(ClassifySQL(Postgres, sql))
		}
	}
	return nil
}

// psqlMeta reports a backslash meta-command other than the describing ones (\d…, \l, \x,
// \timing, \conninfo, \q), a backslash anywhere else.
func psqlMeta(q string) bool {
	for i := strings.IndexByte(q, '\\'); i >= 0; i = strings.IndexByte(q, '\\') {
		rest := q[i+1:]
		j := 0
		for j < len(rest) && rest[j] >= 'a' && rest[j] <= 'z' {
			j++
		}
		switch w := rest[:j]; {
		case w == "l" || w == "x" || w == "timing" || w == "conninfo" || w == "q" ||
			(strings.HasPrefix(w, "d") && w != "do"):
		default:
			return true
		}
		q = rest[j:]
	}
	return false
}

// psqlSQL drops the lines that are describing meta-commands (psqlMeta has vetted them)
// and returns the SQL that is left.
func psqlSQL(q string) string {
	if !strings.Contains(q, `\`) {
		return q
	}
	var keep []string
	for _, l := range strings.Split(q, "\n") {
		if !strings.HasPrefix(strings.TrimSpace(l), `\`) {
			keep = append(keep, l)
		}
	}
	if strings.TrimSpace(strings.Join(keep, "")) == "" {
		return ""
	}
	return strings.Join(keep, "\n")
}

// mysqlProg hands the SQL of -e and of known input to the SQL classifier. Client commands
// (system, \!, source, tee, pager …) and files are dynamic or unknown.
func mysqlProg(c *cmdCtx) error {
	p := c.parse(optSpec{short: "BCcD:e:EfGh:HiLnNop::P:qrsS:tu:vVwXz?", long: []string{
		"execute=", "database=",
		"host=", "port=", "user=", "password?", "socket=", "batch", "silent", "table", "vertical", "raw", "skip-column-names",
		"defaults-file=", "defaults-extra-file=", "defaults-group-suffix=", "init-command=", "init-command-add=",
		"tee=", "pager?", "system-command", "no-defaults", "print-defaults", "login-path=", "help", "version",
		"protocol=", "ssl-mode=", "ssl-ca=", "default-character-set=", "comments", "force", "local-infile?",
		"load-data-local-dir=", "plugin-dir=", "default-auth=",
	}})
	c.read()
	if c.wildOpts(p) {
		return nil
	}
	switch {
	case p.has("V", "version", "?", "help", "print-defaults") && len(p.values("e", "execute")) == 0:
		return nil
	case p.has("defaults-file", "defaults-extra-file", "login-path", "init-command", "init-command-add", "plugin-dir", "default-auth"):
		c.unknown("runs SQL or plugins from configuration")
		return nil
	case p.has("pager"):
		c.dynamic("runs a pager program")
		return nil
	}
	for _, v := range p.values("tee") {
		c.s.writeTo(v, "mysql writes its output to a file")
	}
	cmds := p.values("e", "execute")
	if len(cmds) == 0 {
		if !c.in.known {
			c.unknown("reads SQL that is not in the command line")
			return nil
		}
		cmds = []arg{{s: c.in.text, lit: true}}
	}
	for _, q := range cmds {
		if !q.lit {
			c.unknown("runs SQL known only at run time")
			continue
		}
		if mysqlClientCommand(q.s) {
			c.dynamic("client commands can run programs or read files")
			continue
		}
		c.sql(ClassifySQL(MySQL, q.s))
	}
	return nil
}

// mysqlClientCommands are the mysql client's own commands, recognised at the start of a
// statement (case-insensitively) in batch mode too.
var mysqlClientCommands = map[string]bool{
	"system": true, "source": true, "tee": true, "notee": true, "pager": true, "nopager": true, "edit": true,
	"connect": true, "delimiter": true, "charset": true, "prompt": true, "rehash": true, "status": true,
	"warnings": true, "nowarning": true, "print": true, "go": true, "ego": true, "exit": true, "quit": true,
	"help": true, "clear": true, "resetconnection": true, "query_attributes": true, "ssl_session_data_print": true, "?": true,
}

func mysqlClientCommand(q string) bool {
	if strings.Contains(q, `\`) {
		return true // \! \. \T \P … and backslash escapes alike: refuse rather than guess
	}
	for _, part := range strings.FieldsFunc(q, func(r rune) bool { return r == ';' || r == '\n' }) {
		f := strings.Fields(part)
		if len(f) > 0 && mysqlClientCommands[strings.ToLower(f[0])] {
			return true
		}
	}
	return false
}

// sql records a SQL text the command runs; the command's class follows the SQL's effect.
func (c *cmdCtx) sql(q SQL) {
	c.s.SQL = append(c.s.SQL, q)
	v := q.Value()
	flag := func(k string) bool { b, _ := v[k].(bool); return b }
	switch {
	case !q.Parsed:
		c.s.mark(ClassUnknown, "") // the SQL's reasons say why
	case sqlRefused(q):
		c.s.mark(ClassDestructive, "")
	case !flag("read") || flag("write") || flag("ddl") || flag("dcl"):
		c.write("runs SQL that changes data")
	}
}
