package policy

import (
	"strings"
)

// cmdCtx is one resolved command: the program's base name, its arguments and its input.
type cmdCtx struct {
	s     *Shell
	name  string
	args  []arg
	in    stdin
	depth int
}

func (c *cmdCtx) read()                  { c.s.mark(ClassRead, "") }
func (c *cmdCtx) write(why string)       { c.s.mark(ClassWrite, c.name+" "+why) }
func (c *cmdCtx) destroy(why string)     { c.s.mark(ClassDestructive, c.name+" "+why) }
func (c *cmdCtx) dynamic(why string)     { c.s.mark(ClassDynamic, c.name+" "+why) }
func (c *cmdCtx) unknown(why string)     { c.s.mark(ClassUnknown, c.name+" "+why) }
func (c *cmdCtx) parse(o optSpec) parsed { return o.parse(c.args) }

// wildOpts marks the command unknown when words known only at run time may be options
// that matter; it reports whether it did.
func (c *cmdCtx) wildOpts(p parsed) bool {
	if p.wild {
		c.unknown("gets options known only at run time")
	}
	return p.wild
}

type program func(c *cmdCtx) error

func always(class ShellClass, why string) program {
	return func(c *cmdCtx) error {
		switch class {
		case ClassRead:
			c.read()
		case ClassWrite:
			c.write(why)
		case ClassDestructive:
			c.destroy(why)
		case ClassDynamic:
			c.dynamic(why)
		default:
			c.unknown(why)
		}
		return nil
	}
}

// readOnly are programs that only read and print whatever their options: none of their
// options writes a file, runs a program or changes the system.
var readOnly = []string{
	"ls", "cat", "head", "tail", "wc", "grep", "egrep", "fgrep", "zgrep", "zcat", "echo", "pwd", "whoami", "id",
	"groups", "uname", "uptime", "free", "ps", "pgrep", "pidof", "df", "du", "stat", "basename", "dirname",
	"realpath", "readlink", "true", "false", "test", "[", "sleep", "seq", "cut", "tr", "tac", "nl", "rev",
	"paste", "join", "comm", "diff", "cmp", "md5sum", "sha1sum", "sha224sum", "sha256sum", "sha384sum",
	"sha512sum", "b2sum", "cksum", "sum", "base64", "base32", "od", "hexdump", "strings", "column", "fold",
	"fmt", "expand", "unexpand", "jq", "tree", "lsof", "which", "whereis", "type", "printenv", "locale",
	"nproc", "lscpu", "lsblk", "findmnt", "vmstat", "iostat", "mpstat", "w", "who", "last", "getent", "file",
	"less", "more", "cal", "numfmt", "look", "factor", "expr", "yes", "tty", "getconf", "arch", "logname",
	"users", "dig", "host", "nslookup", "ping", "netstat", "ss", "lsmod", "cd", "pushd", "popd", "dirs", ":",
	"exit", "return", "break", "continue", "shift", "unset", "wait", "jobs", "getopts", "umask", "ulimit",
	"help", "set", "shopt", "let", "times", "caller", "bg", "fg", "disown", "declare", "typeset",
	"local", "export", "readonly", "hash", "dmesg", "env", "printf", "read", "mapfile", "readarray", "sha1",
	"xxd", "diff3", "sdiff", "pstree", "nm", "objdump", "size", "sort", "uniq", "shuf", "bc",
}

var programs map[string]program

func init() {
	programs = map[string]program{}
	for _, n := range readOnly {
		programs[n] = always(ClassRead, "")
	}
	for n, p := range map[string]program{
		// Programs whose options or operands can write, with the options that do.
		"sort":  outputOpt(optSpec{short: "o:T:S:k:t:", long: []string{"output=", "compress-program=", "temporary-directory=", "files0-from=", "key=", "field-separator=", "buffer-size=", "random-source=", "batch-size=", "parallel=", "sort="}}, "o", "output"),
		"shuf":  outputOpt(optSpec{short: "o:n:i:", long: []string{"output=", "head-count=", "input-range=", "random-source="}}, "o", "output"),
		"uniq":  uniq,
		"xxd":   secondOperandWrites(optSpec{short: "c:g:l:o:s:C", long: []string{"cols=", "groupsize=", "len=", "offset=", "seek="}}),
		"dmesg": optionWrites(optSpec{short: "C:cD:EF:f:l:n:s:", long: []string{"clear", "read-clear", "console-off", "console-on", "console-level=", "facility=", "level=", "file=", "buffer-size="}}, ClassDestructive, "clears or changes the kernel log", "c", "C", "clear", "read-clear", "D", "E", "n", "console-off", "console-on", "console-level"),
		"hostname": func(c *cmdCtx) error {
			p := c.parse(optSpec{short: "F:b", long: []string{"file=", "boot"}})
			if len(p.operands) > 0 || p.has("F", "file", "b", "boot") || c.wildOpts(p) {
				c.write("sets the host name")
				return nil
			}
			c.read()
			return nil
		},
		"date": func(c *cmdCtx) error {
			p := c.parse(optSpec{short: "d:f:I::r:R:s:u", long: []string{"date=", "file=", "iso-8601?", "reference=", "rfc-3339=", "set=", "utc", "universal", "debug", "resolution", "rfc-email"}})
			if p.has("s", "set") || c.wildOpts(p) {
				c.write("sets the clock")
				return nil
			}
			for _, o := range p.operands {
				if !o.lit || !strings.HasPrefix(o.s, "+") {
					c.write("sets the clock")
					return nil
				}
			}
			c.read()
			return nil
		},
		"rg": func(c *cmdCtx) error {
			p := c.parse(optSpec{short: "A:B:C:e:f:g:m:M:t:T:E:j:r:", long: []string{"pre=", "pre-glob=", "search-zip", "regexp=", "file=", "glob=", "type=", "type-not=", "replace=", "max-count=", "context=", "after-context=", "before-context=", "encoding=", "threads="}})
			if p.has("pre", "pre-glob", "z", "search-zip") || c.wildOpts(p) {
				c.dynamic("runs preprocessors")
				return nil
			}
			c.read()
			return nil
		},
		"tee": func(c *cmdCtx) error {
			p := c.parse(optSpec{short: "aip", long: []string{"append", "ignore-interrupts", "output-error?"}})
			c.read()
			for _, o := range p.operands {
				c.s.writeTo(o, "tee writes files")
			}
			return nil
		},
		"printf": func(c *cmdCtx) error {
			if len(c.args) > 0 && c.args[0].lit && strings.HasPrefix(c.args[0].s, "-v") {
				for _, a := range c.args {
					if codeInData(a.s) {
						c.s.mark(ClassDynamic, "stores shell code in a variable")
					}
				}
			}
			c.read()
			return nil
		},
		"read":      readBuiltin,
		"file":      optionWrites(optSpec{short: "CcbdEhiklLNnprsSvzZ0e:F:f:m:P:", long: []string{"compile", "magic-file=", "files-from=", "separator=", "exclude=", "parameter="}}, ClassWrite, "compiles a magic file", "C", "compile"),
		"less":      pager,
		"more":      pager,
		"mapfile":   readBuiltin,
		"readarray": readBuiltin,
		"hash": func(c *cmdCtx) error {
			if p := c.parse(optSpec{short: "dlp:rt"}); p.has("p") || p.wild {
				c.dynamic("-p makes a name run another program")
				return nil
			}
			c.read()
			return nil
		},
		"set": func(c *cmdCtx) error { c.read(); return nil },

		// Programs that write or change state.
		"touch":      writesOperands(optSpec{short: "acd:fhmr:t:", long: []string{"date=", "reference=", "time="}}, "creates or touches files"),
		"mkdir":      writesOperands(optSpec{short: "m:pvZ", long: []string{"mode=", "context?"}}, "creates directories"),
		"cp":         copyLike("copies files", ClassWrite),
		"install":    copyLike("installs files", ClassWrite),
		"ln":         linkProg,
		"mktemp":     always(ClassWrite, "creates a temporary file"),
		"patch":      always(ClassWrite, "changes files"),
		"split":      always(ClassWrite, "writes files"),
		"csplit":     always(ClassWrite, "writes files"),
		"sync":       always(ClassRead, ""),
		"chmod":      modeProg,
		"chown":      modeProg,
		"chgrp":      modeProg,
		"chattr":     modeProg,
		"setfacl":    modeProg,
		"gzip":       compressor,
		"gunzip":     compressor,
		"bzip2":      compressor,
		"bunzip2":    compressor,
		"xz":         compressor,
		"unxz":       compressor,
		"zstd":       compressor,
		"unzstd":     compressor,
		"zip":        always(ClassWrite, "writes an archive"),
		"unzip":      unzip,
		"tar":        tarProg,
		"sed":        sedProg,
		"awk":        awkProg,
		"gawk":       awkProg,
		"mawk":       awkProg,
		"nawk":       awkProg,
		"find":       findProg,
		"curl":       curlProg,
		"wget":       wgetProg,
		"git":        gitProg,
		"kubectl":    kubectlProg,
		"psql":       psqlProg,
		"mysql":      mysqlProg,
		"mariadb":    mysqlProg,
		"dd":         ddProg,
		"kill":       killProg,
		"crontab":    crontabProg,
		"systemctl":  systemctlProg,
		"journalctl": journalctlProg,
		"docker":     dockerProg,
		"podman":     dockerProg,

		// Destructive programs.
		"rm":         rmProg,
		"rmdir":      always(ClassDestructive, "deletes directories"),
		"unlink":     always(ClassDestructive, "deletes files"),
		"mv":         mvProg,
		"shred":      diskTool("overwrites files"),
		"truncate":   always(ClassDestructive, "truncates files"),
		"pkill":      always(ClassDestructive, "kills processes"),
		"killall":    always(ClassDestructive, "kills processes"),
		"reboot":     always(ClassDestructive, "stops the system"),
		"shutdown":   always(ClassDestructive, "stops the system"),
		"halt":       always(ClassDestructive, "stops the system"),
		"poweroff":   always(ClassDestructive, "stops the system"),
		"userdel":    always(ClassDestructive, "deletes users"),
		"groupdel":   always(ClassDestructive, "deletes groups"),
		"swapoff":    always(ClassDestructive, "disables swap"),
		"mkfs":       diskTool("creates a file system"),
		"mke2fs":     diskTool("creates a file system"),
		"mkswap":     diskTool("formats swap"),
		"wipefs":     diskTool("wipes signatures"),
		"fdisk":      diskTool("partitions disks"),
		"sfdisk":     diskTool("partitions disks"),
		"parted":     diskTool("partitions disks"),
		"blkdiscard": diskTool("discards device blocks"),
		"badblocks":  diskTool("tests devices"),

		// Interpreters and code runners: the code is not shell the classifier can read.
		"eval":   evalProg,
		"source": always(ClassDynamic, "runs a script file"),
		".":      always(ClassDynamic, "runs a script file"),
		"trap": func(c *cmdCtx) error {
			if p := c.parse(optSpec{short: "lp"}); len(p.operands) > 1 || p.wild {
				c.dynamic("sets code to run on a signal")
				return nil
			}
			c.read()
			return nil
		},
		"alias":  func(c *cmdCtx) error { return aliasProg(c) },
		"enable": always(ClassDynamic, "loads or switches builtins"),
		"ssh":    always(ClassDynamic, "runs commands on another host"),
	} {
		programs[n] = p
	}
	for _, n := range []string{"sh", "bash", "dash", "zsh", "ksh", "mksh", "ash", "yash", "posh", "rbash"} {
		programs[n] = shellProg
	}
	for _, n := range []string{"fish", "csh", "tcsh"} {
		programs[n] = interpreter("runs code in another shell language")
	}
	for _, n := range []string{
		"perl", "python", "python2", "python3", "ruby", "node", "nodejs", "deno", "bun",
		"php", "lua", "luajit", "lua5.1", "lua5.3", "lua5.4", "tclsh", "wish", "Rscript", "R", "pwsh",
		"powershell", "osascript", "irb", "julia", "expect", "guile", "racket", "sbcl", "ghci", "runghc", "scala",
		"groovy", "jshell", "java", "gdb", "sqlite3", "python3.11", "python3.12", "python3.13", "perl5",
	} {
		programs[n] = interpreter("runs code in another language")
	}
	for _, n := range []string{
		"make", "npm", "npx", "yarn", "pnpm", "pip", "pip3", "go", "cargo", "mvn",
		"gradle", "pytest", "tox", "bundle", "rake", "composer", "just", "cmake", "ninja",
	} {
		programs[n] = always(ClassDynamic, "runs project code")
	}
}

// interpreter: --version and --help only print; anything else runs code.
func interpreter(why string) program {
	return func(c *cmdCtx) error {
		if len(c.args) == 1 && c.args[0].lit && (c.args[0].s == "--version" || c.args[0].s == "-V" || c.args[0].s == "--help" || c.args[0].s == "-v") {
			c.read()
			return nil
		}
		if c.in.given && !c.in.known {
			c.s.PipeToInterpreter = true
		}
		c.dynamic(why)
		return nil
	}
}

// shellProg classifies sh, bash, …: -c code or code on standard input is read as shell;
// a script file or unknown input is dynamic.
func shellProg(c *cmdCtx) error {
	p := c.parse(optSpec{short: "abcefhikmnprstuvxBCEHPTlo:O:D", long: []string{
		"rcfile=", "init-file=", "login",
		"noprofile", "norc", "posix", "restricted", "verbose", "version", "help", "debugger", "dump-strings",
		"dump-po-strings", "noediting", "pretty-print",
	}, posix: true})
	switch {
	case p.has("version", "help") && !p.wild:
		c.read()
		return nil
	case p.has("rcfile", "init-file", "debugger", "i"):
		c.dynamic("loads a startup file")
		return nil
	case p.has("c"):
		if len(p.operands) == 0 {
			c.unknown("-c without code")
			return nil
		}
		// The first operand is the code; later words are its $0, $1, … whatever they hold.
		return c.s.code(p.operands[0], c.depth)
	case p.wild:
		c.dynamic("runs code named only at run time")
		return nil
	case len(p.operands) > 0:
		c.dynamic("runs a script file")
		return nil
	case c.in.known:
		return c.s.code(arg{s: c.in.text, lit: true}, c.depth)
	}
	if c.in.given {
		c.s.PipeToInterpreter = true
		c.s.mark(ClassDynamic, "")
		return nil
	}
	c.dynamic("runs code from its input")
	return nil
}

func evalProg(c *cmdCtx) error {
	if len(c.args) == 0 {
		c.read()
		return nil
	}
	code := joinArgs(c.args)
	if !code.lit {
		c.s.DynamicCommand = true
		c.s.mark(ClassDynamic, "")
		return nil
	}
	return c.s.code(code, c.depth)
}

func aliasProg(c *cmdCtx) error {
	for _, a := range c.args {
		if !a.lit || strings.Contains(a.s, "=") {
			c.dynamic("defines what a command name runs")
			return nil
		}
	}
	c.read()
	return nil
}

// pager: less and more print like cat without a terminal; an initial command (+cmd) or a
// key-binding file can run commands when there is one.
func pager(c *cmdCtx) error {
	for _, a := range c.args {
		if !a.lit || strings.HasPrefix(a.s, "+") || strings.HasPrefix(a.s, "-k") || strings.HasPrefix(a.s, "--lesskey") {
			c.dynamic("runs initial or key-bound commands")
			return nil
		}
	}
	c.read()
	return nil
}

func readBuiltin(c *cmdCtx) error {
	for _, a := range c.args {
		if !a.lit || (c.name != "read" && strings.HasPrefix(a.s, "-") && strings.Contains(a.s, "C")) {
			c.dynamic("-C runs a callback, or options are known only at run time")
			return nil
		}
	}
	if c.in.given && (!c.in.known || codeInData(c.in.text)) {
		c.s.mark(ClassDynamic, "reads shell code or unknown input into a variable")
		return nil
	}
	c.read()
	return nil
}

// outputOpt: a read-only program whose named options write the file they name.
func outputOpt(spec optSpec, names ...string) program {
	return func(c *cmdCtx) error {
		p := c.parse(spec)
		if p.has("compress-program") || c.wildOpts(p) {
			c.dynamic("runs a compressor program")
			return nil
		}
		c.read()
		for _, v := range p.values(names...) {
			c.s.writeTo(v, c.name+" writes its output file")
		}
		return nil
	}
}

func optionWrites(spec optSpec, class ShellClass, why string, names ...string) program {
	return func(c *cmdCtx) error {
		p := c.parse(spec)
		if p.has(names...) || c.wildOpts(p) {
			c.s.mark(class, c.name+" "+why)
			return nil
		}
		c.read()
		return nil
	}
}

func uniq(c *cmdCtx) error {
	p := c.parse(optSpec{short: "cdDf:is:uw:z", long: []string{"all-repeated?", "group?", "skip-fields=", "skip-chars=", "check-chars="}})
	if c.wildOpts(p) {
		return nil
	}
	c.read()
	if len(p.operands) > 1 {
		c.s.writeTo(p.operands[1], "uniq writes its output file")
	}
	return nil
}

func secondOperandWrites(spec optSpec) program {
	return func(c *cmdCtx) error {
		p := c.parse(spec)
		if c.wildOpts(p) {
			return nil
		}
		c.read()
		if len(p.operands) > 1 {
			c.s.writeTo(p.operands[1], c.name+" writes its output file")
		}
		return nil
	}
}

func writesOperands(spec optSpec, why string) program {
	return func(c *cmdCtx) error {
		p := c.parse(spec)
		c.write(why)
		for _, o := range p.operands {
			c.s.writeTo(o, c.name+" "+why)
		}
		return nil
	}
}

func copyLike(why string, class ShellClass) program {
	return func(c *cmdCtx) error {
		p := c.parse(optSpec{short: "abdfiHlLnPprRsS:t:T:uvxZ", long: []string{
			"target-directory=", "suffix=",
			"backup?", "sparse=", "reflink?", "preserve?", "no-preserve=", "context?", "update?", "mode=", "owner=", "group=",
		}})
		c.s.mark(class, c.name+" "+why)
		if t := p.values("t", "target-directory"); len(t) > 0 {
			c.s.writeTo(t[0], c.name+" "+why)
		} else if len(p.operands) > 0 {
			c.s.writeTo(p.operands[len(p.operands)-1], c.name+" "+why)
		}
		if p.has("remove-destination") {
			c.destroy("removes destinations")
		}
		return nil
	}
}

func linkProg(c *cmdCtx) error {
	p := c.parse(optSpec{short: "bdfFiLnPrsS:t:Tv", long: []string{
		"backup?", "directory", "force", "interactive",
		"logical", "no-dereference", "physical", "relative", "symbolic", "suffix=", "target-directory=", "no-target-directory", "verbose",
	}})
	if p.has("f", "force") || c.wildOpts(p) {
		c.destroy("replaces existing files")
		return nil
	}
	c.write("creates links")
	if len(p.operands) > 0 {
		c.s.writeTo(p.operands[len(p.operands)-1], "ln creates links")
	}
	return nil
}

func modeProg(c *cmdCtx) error {
	p := c.parse(optSpec{short: "cfvRHLPhm:M:x:X:", long: []string{
		"changes", "silent", "quiet", "verbose",
		"no-preserve-root", "preserve-root", "reference=", "recursive", "dereference", "no-dereference", "from=", "set=", "modify=", "remove=",
	}})
	if p.has("R", "recursive") || p.wild {
		c.destroy("changes ownership or modes recursively")
		return nil
	}
	c.write("changes ownership or modes")
	return nil
}

func compressor(c *cmdCtx) error {
	p := c.parse(optSpec{short: "cdfhklLnNqrStvVz123456789T:S:M:o:", long: []string{
		"stdout", "to-stdout",
		"list", "test", "keep", "help", "version", "suffix=", "threads=", "output=",
	}})
	if c.wildOpts(p) {
		return nil
	}
	if p.has("c", "stdout", "to-stdout", "l", "list", "t", "test", "h", "help", "V", "version") || len(p.operands) == 0 {
		c.read()
		return nil
	}
	if p.has("k", "keep") {
		c.write("writes compressed files")
		return nil
	}
	c.destroy("replaces files with their (de)compressed form")
	return nil
}

func unzip(c *cmdCtx) error {
	p := c.parse(optSpec{short: "lvtzZpcfnoqujCXKLMVaAbsx:d:P:"})
	if p.has("l", "v", "t", "z", "Z", "p", "c") {
		c.read()
		return nil
	}
	if p.has("o") {
		c.destroy("overwrites files")
		return nil
	}
	c.write("extracts files")
	for _, d := range p.values("d") {
		c.s.writeTo(d, "unzip extracts files")
	}
	return nil
}

func tarProg(c *cmdCtx) error {
	args := c.args
	// Old style: tar xzf f.tgz — the first word is a cluster of letters without a dash.
	if len(args) > 0 && args[0].lit && !strings.HasPrefix(args[0].s, "-") {
		args = append([]arg{{s: "-" + args[0].s, lit: true}}, args[1:]...)
	}
	p := optSpec{short: "AcdrtuxzjJZaf:C:T:X:b:H:I:K:L:N:V:g:F:", long: []string{
		"to-command=",
		"use-compress-program=", "checkpoint-action=", "info-script=", "new-volume-script=", "rsh-command=",
		"remove-files", "file=", "directory=", "files-from=", "exclude-from=", "create", "extract", "get", "list",
		"append", "update", "delete", "diff", "compare", "concatenate", "overwrite", "unlink-first",
		"recursive-unlink", "transform=", "exclude=", "xform=", "force-local",
	}}.parse(args)
	switch {
	case p.wild:
		c.unknown("gets options known only at run time")
	case p.has("to-command", "use-compress-program", "I", "checkpoint-action", "info-script", "F",
		"new-volume-script", "rsh-command"):
		c.dynamic("runs programs")
	case p.has("remove-files", "delete", "recursive-unlink", "unlink-first", "overwrite"):
		c.destroy("deletes or overwrites files")
	case len(p.values("f", "file")) > 0 && strings.Contains(p.values("f", "file")[0].s, ":") && !p.has("force-local"):
		c.dynamic("reaches a remote archive through a remote shell")
	case p.has("x", "extract", "get"):
		c.write("extracts files")
		for _, d := range p.values("C", "directory") {
			c.s.writeTo(d, "tar extracts files")
		}
	case p.has("c", "create", "r", "append", "u", "update", "A", "concatenate"):
		c.read()
		for _, f := range p.values("f", "file") {
			c.s.writeTo(f, "tar writes an archive")
		}
		if len(p.values("f", "file")) == 0 {
			c.s.mark(ClassWrite, "tar writes an archive")
		}
	case p.has("t", "list", "d", "diff", "compare"):
		c.read()
	default:
		c.unknown("has no known operation")
	}
	return nil
}

func rmProg(c *cmdCtx) error {
	p := c.parse(optSpec{long: []string{
		"force", "interactive?", "one-file-system", "no-preserve-root",
		"preserve-root?", "recursive", "dir", "verbose", "help", "version",
	}})
	if p.has("help", "version") && len(p.operands) == 0 {
		c.read()
		return nil
	}
	if p.has("r", "R", "recursive") || p.wild {
		c.s.RecursiveDelete = true
		c.s.mark(ClassDestructive, "")
		return nil
	}
	c.destroy("deletes files")
	return nil
}

func mvProg(c *cmdCtx) error {
	p := c.parse(optSpec{short: "bfinS:t:TuvZ", long: []string{
		"backup?", "force", "interactive", "no-clobber",
		"strip-trailing-slashes", "suffix=", "target-directory=", "no-target-directory", "update?", "verbose", "context", "help", "version",
	}})
	if p.has("help", "version") && len(p.operands) == 0 {
		c.read()
		return nil
	}
	for _, t := range p.values("t", "target-directory") {
		c.s.writeTo(t, "mv moves files")
	}
	if len(p.operands) > 0 {
		c.s.writeTo(p.operands[len(p.operands)-1], "mv moves files")
	}
	c.destroy("moves files away or over others")
	return nil
}

func diskTool(why string) program {
	return func(c *cmdCtx) error {
		c.s.DiskWrite = true
		c.s.mark(ClassDestructive, "")
		return nil
	}
}

func ddProg(c *cmdCtx) error {
	c.read()
	for _, a := range c.args {
		if !a.lit {
			c.unknown("gets operands known only at run time")
			return nil
		}
		if t, ok := strings.CutPrefix(a.s, "of="); ok {
			if t == "/dev/null" || t == "/dev/stdout" || t == "/dev/stderr" || strings.HasPrefix(t, "/dev/fd/") {
				continue
			}
			if isDevice(t) {
				c.s.DiskWrite = true
				c.s.mark(ClassDestructive, "")
				continue
			}
			c.s.writeTo(arg{s: t, lit: true}, "dd writes a file")
			c.destroy("overwrites its output")
		}
	}
	return nil
}

func killProg(c *cmdCtx) error {
	p := c.parse(optSpec{short: "s:n:lLq:", long: []string{"signal=", "list?", "table", "queue=", "timeout="}})
	if p.has("l", "L", "list", "table") {
		c.read()
		return nil
	}
	if len(p.opts) == 1 && p.opts[0].name == "0" || (len(p.values("s", "signal")) == 1 && p.values("s", "signal")[0].s == "0") {
		c.read()
		return nil
	}
	c.destroy("signals processes")
	return nil
}

func crontabProg(c *cmdCtx) error {
	p := c.parse(optSpec{short: "lerinu:T", long: []string{"user="}})
	switch {
	case p.has("l") && !p.has("r", "e"):
		c.read()
	case p.has("r"):
		c.destroy("removes the crontab")
	default:
		c.dynamic("installs commands to run later")
	}
	return nil
}

// subcommand returns the first operand after options that take no value besides the listed
// ones, and its index in c.args.
func subcommand(args []arg, valued map[string]bool) (int, bool) {
	for i := 0; i < len(args); i++ {
		a := args[i]
		if !a.lit {
			return i, false
		}
		switch {
		case a.s == "--":
			return i + 1, i+1 < len(args) && args[i+1].lit
		case strings.HasPrefix(a.s, "--"):
			name, _, eq := strings.Cut(a.s, "=")
			if !eq && valued[name] {
				i++
			}
		case strings.HasPrefix(a.s, "-") && len(a.s) > 1:
			if len(a.s) == 2 && valued[a.s] {
				i++
			}
		default:
			return i, true
		}
	}
	return len(args), true
}

func systemctlProg(c *cmdCtx) error {
	i, ok := subcommand(c.args, map[string]bool{"-H": true, "--host": true, "-M": true, "--machine": true, "-t": true, "--type": true, "-p": true, "--property": true, "-s": true, "--signal": true, "-n": true, "--lines": true, "-o": true, "--output": true, "--state": true, "--root": true})
	if !ok {
		c.unknown("gets a subcommand known only at run time")
		return nil
	}
	if i >= len(c.args) {
		c.read()
		return nil
	}
	switch v := c.args[i].s; {
	case v == "status" || v == "show" || v == "cat" || v == "help" || v == "get-default" ||
		strings.HasPrefix(v, "list-") || strings.HasPrefix(v, "is-"):
		c.read()
	case v == "start" || v == "restart" || v == "reload" || v == "try-restart" || v == "reload-or-restart" ||
		v == "enable" || v == "daemon-reload" || v == "set-property" || v == "reenable" || v == "preset" || v == "edit" || v == "link" || v == "revert" || v == "set-default":
		c.write("changes services")
	case v == "stop" || v == "kill" || v == "disable" || v == "mask" || v == "isolate" || v == "reboot" ||
		v == "poweroff" || v == "halt" || v == "kexec" || v == "rescue" || v == "emergency" || v == "clean" || v == "freeze" || v == "suspend" || v == "hibernate" || v == "reset-failed":
		c.destroy("stops, disables or kills services")
	default:
		c.unknown("has an unknown subcommand")
	}
	return nil
}

func journalctlProg(c *cmdCtx) error {
	p := c.parse(optSpec{short: "b::D:M:u:t:p:n::S:U:o:g:F:k", long: []string{
		"vacuum-size=", "vacuum-time=",
		"vacuum-files=", "rotate", "flush", "sync", "relinquish-var", "smart-relinquish-var", "setup-keys", "update-catalog",
		"unit=", "identifier=", "priority=", "lines?", "since=", "until=", "output=", "grep=", "field=", "directory=", "file=", "root=", "image=", "namespace=", "cursor=", "after-cursor=", "cursor-file=", "boot?", "machine=", "output-fields=",
	}})
	switch {
	case p.has("vacuum-size", "vacuum-time", "vacuum-files"):
		c.destroy("deletes journal files")
	case p.has("rotate", "flush", "sync", "relinquish-var", "smart-relinquish-var", "setup-keys", "update-catalog", "cursor-file"):
		c.write("changes the journal")
	case c.wildOpts(p):
	default:
		c.read()
	}
	return nil
}

func dockerProg(c *cmdCtx) error {
	i, ok := subcommand(c.args, map[string]bool{"-H": true, "--host": true, "--context": true, "-c": true, "--config": true, "-l": true, "--log-level": true})
	if !ok || i >= len(c.args) {
		c.unknown("has no known subcommand")
		return nil
	}
	sub := c.args[i].s
	next := ""
	if i+1 < len(c.args) && c.args[i+1].lit {
		next = c.args[i+1].s
	}
	switch {
	case sub == "ps" || sub == "images" || sub == "inspect" || sub == "logs" || sub == "version" || sub == "info" ||
		sub == "top" || sub == "history" || sub == "port" || sub == "diff" || sub == "search" ||
		((sub == "container" || sub == "image" || sub == "volume" || sub == "network") && (next == "ls" || next == "inspect" || next == "list")):
		c.read()
	case sub == "rm" || sub == "rmi" || sub == "kill" || sub == "stop" || sub == "prune" || next == "prune" || next == "rm" || sub == "down":
		c.destroy("removes or stops containers, images or volumes")
	case sub == "run" || sub == "exec" || sub == "compose" || sub == "build" || sub == "buildx":
		c.dynamic("runs containers or build steps")
	default:
		c.unknown("has an unknown subcommand")
	}
	return nil
}
