package policy

import "strings"

// wrapped is what a wrapper runs: another command line (argv), or shell code.
type wrapped struct {
	argv []arg
	code *arg
}

// wrapper resolves one wrapper's arguments to what it runs. done means the wrapper runs
// nothing further (or was classified by itself).
type wrapper func(s *Shell, args []arg) (next wrapped, done bool)

// wrapperOpts builds a wrapper that takes options then the command.
func wrapperOpts(spec optSpec, check func(s *Shell, p parsed, args []arg) (wrapped, bool)) wrapper {
	spec.posix = true
	return func(s *Shell, args []arg) (wrapped, bool) {
		p := spec.parse(args)
		if p.wild {
			s.mark(ClassUnknown, "a wrapper's options are only known at run time")
			return wrapped{}, true
		}
		if check != nil {
			if w, done := check(s, p, args); done || w.code != nil || w.argv != nil {
				return w, done
			}
		}
		if p.rest >= len(args) {
			s.mark(ClassRead, "")
			return wrapped{}, true
		}
		return wrapped{argv: args[p.rest:]}, false
	}
}

// runCode is the code a `-c` style option or a joined command line gives.
func runCode(a arg) wrapped { return wrapped{code: &a} }

// joinArgs joins words with spaces as a shell would re-read them (watch, su -c, ssh).
func joinArgs(args []arg) arg {
	var b strings.Builder
	for i, a := range args {
		if !a.lit {
			return arg{}
		}
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(a.s)
	}
	return arg{s: b.String(), lit: true}
}

// envAssigns skips NAME=value words (env, sudo) and classifies them as assignments.
func envAssigns(s *Shell, args []arg) []arg {
	for len(args) > 0 && args[0].lit {
		name, _, ok := strings.Cut(args[0].s, "=")
		if !ok || name == "" || strings.ContainsAny(name, " /-") {
			break
		}
		if riskyVar(name) {
			s.mark(ClassDynamic, "sets a variable that changes what programs run")
		} else if codeInData(args[0].s) {
			s.mark(ClassDynamic, "stores shell code in a variable")
		}
		args = args[1:]
	}
	if len(args) > 0 && !args[0].lit && strings.Contains(args[0].s, "=") {
		s.mark(ClassUnknown, "an environment value is only known at run time")
	}
	return args
}

var wrappers map[string]wrapper

func init() {
	sudo := wrapperOpts(optSpec{
		short: "AbEeHiKklnPSsVvu:g:U:C:D:h::p:r:t:T:R:",
		long: []string{
			"askpass", "background", "bell", "close-from=", "chdir=", "preserve-env?", "edit",
			"group=", "set-home", "help", "host=", "login", "remove-timestamp", "reset-timestamp", "list",
			"non-interactive", "preserve-groups", "prompt=", "chroot=", "role=", "stdin", "shell", "type=",
			"command-timeout=", "other-user=", "user=", "version", "validate",
		},
	}, func(s *Shell, p parsed, args []arg) (wrapped, bool) {
		if p.has("e", "edit") {
			s.mark(ClassWrite, "sudo -e edits files")
			return wrapped{}, true
		}
		rest := envAssigns(s, args[p.rest:])
		if (p.has("i", "login") || p.has("s", "shell")) && len(rest) > 0 {
			return runCode(joinArgs(rest)), false
		}
		if p.has("i", "login", "s", "shell") {
			s.mark(ClassDynamic, "starts an interactive shell")
			return wrapped{}, true
		}
		if len(rest) == 0 {
			s.mark(ClassRead, "")
			return wrapped{}, true
		}
		return wrapped{argv: rest}, false
	})
	su := func(s *Shell, args []arg) (wrapped, bool) {
		p := optSpec{
			short: "c:fg:G:lmpPs:w:", long: []string{
				"command=", "session-command=", "fast", "group=",
				"supp-group=", "login", "preserve-environment", "pty", "shell=", "whitelist-environment=", "help", "version",
			},
		}.parse(args)
		if p.wild {
			s.mark(ClassUnknown, "a wrapper's options are only known at run time")
			return wrapped{}, true
		}
		if c := p.values("c", "command", "session-command"); len(c) > 0 {
			return runCode(c[len(c)-1]), false
		}
		if p.has("help", "version") {
			s.mark(ClassRead, "")
			return wrapped{}, true
		}
		s.mark(ClassDynamic, "starts an interactive shell")
		return wrapped{}, true
	}
	runuser := func(s *Shell, args []arg) (wrapped, bool) {
		p := optSpec{short: "u:", long: []string{"user="}, posix: true}.parse(args)
		if p.has("u", "user") && !p.wild {
			return wrapped{argv: args[p.rest:]}, false
		}
		return su(s, args)
	}
	env := wrapperOpts(optSpec{
		short: "0iu:C:S:vP:", long: []string{
			"null", "ignore-environment", "unset=", "chdir=", "split-string=",
			"debug", "help", "version", "block-signal?", "default-signal?", "ignore-signal?", "list-signal-handling", "argv0=",
		},
	}, func(s *Shell, p parsed, args []arg) (wrapped, bool) {
		if p.has("P", "argv0") {
			s.mark(ClassUnknown, "env runs a program from a chosen path")
			return wrapped{}, true
		}
		rest := envAssigns(s, args[p.rest:])
		if split := p.values("S", "split-string"); len(split) > 0 {
			var words []arg
			for _, v := range split {
				if !v.lit || strings.ContainsAny(v.s, "\"'\\$#") {
					s.mark(ClassUnknown, "env -S string is not plain words")
					return wrapped{}, true
				}
				for _, f := range strings.Fields(v.s) {
					words = append(words, arg{s: f, lit: true})
				}
			}
			rest = envAssigns(s, append(words, rest...))
		}
		if len(rest) == 0 {
			s.mark(ClassRead, "")
			return wrapped{}, true
		}
		return wrapped{argv: rest}, false
	})
	plain := wrapperOpts(optSpec{long: []string{"help", "version"}}, nil)
	exec := wrapperOpts(optSpec{short: "a:cl"}, nil)
	command := wrapperOpts(optSpec{short: "pvV"}, func(s *Shell, p parsed, _ []arg) (wrapped, bool) {
		if p.has("v", "V") {
			s.mark(ClassRead, "")
			return wrapped{}, true
		}
		return wrapped{}, false
	})
	nice := func(s *Shell, args []arg) (wrapped, bool) {
		if len(args) > 0 && args[0].lit && len(args[0].s) > 1 && args[0].s[0] == '-' &&
			strings.Trim(args[0].s[1:], "0123456789") == "" {
			args = args[1:] // nice -10 cmd
		}
		return wrapperOpts(optSpec{short: "n:", long: []string{"adjustment=", "help", "version"}}, nil)(s, args)
	}
	firstOperand := func(spec optSpec) wrapper {
		return wrapperOpts(spec, func(s *Shell, p parsed, args []arg) (wrapped, bool) {
			if p.rest+1 >= len(args) {
				s.mark(ClassRead, "")
				return wrapped{}, true
			}
			return wrapped{argv: args[p.rest+1:]}, false
		})
	}
	timeout := firstOperand(optSpec{short: "fk:ps:v", long: []string{"foreground", "kill-after=", "preserve-status", "signal=", "verbose", "help", "version"}})
	chroot := wrapperOpts(optSpec{long: []string{"groups=", "userspec=", "skip-chdir", "help", "version"}},
		func(s *Shell, p parsed, args []arg) (wrapped, bool) {
			if p.rest+1 >= len(args) {
				s.mark(ClassDynamic, "starts an interactive shell")
				return wrapped{}, true
			}
			s.mark(ClassUnknown, "chroot runs a program from another root")
			return wrapped{}, true
		})
	flock := wrapperOpts(optSpec{short: "sxunw:oE:Fc:", long: []string{
		"shared", "exclusive", "unlock",
		"nonblock", "timeout=", "close", "conflict-exit-code=", "no-fork", "command=", "verbose", "help", "version",
	}},
		func(s *Shell, p parsed, args []arg) (wrapped, bool) {
			if c := p.values("c", "command"); len(c) > 0 {
				return runCode(c[len(c)-1]), false
			}
			if p.rest+1 >= len(args) {
				s.mark(ClassRead, "")
				return wrapped{}, true
			}
			rest := args[p.rest+1:]
			if rest[0].lit && (rest[0].s == "-c" || strings.HasPrefix(rest[0].s, "--command")) {
				q := optSpec{short: "c:", long: []string{"command="}}.parse(rest)
				if c := q.values("c", "command"); len(c) > 0 {
					return runCode(c[len(c)-1]), false
				}
			}
			return wrapped{argv: rest}, false
		})
	xargs := wrapperOpts(optSpec{short: "0a:d:E:e::I:i::L:l::n:oP:prs:tx", long: []string{
		"null", "arg-file=",
		"delimiter=", "eof?", "replace?", "max-lines?", "max-args=", "open-tty", "max-procs=", "interactive",
		"process-slot-var=", "no-run-if-empty", "max-chars=", "show-limits", "verbose", "exit", "help", "version",
	}},
		func(s *Shell, p parsed, args []arg) (wrapped, bool) {
			rest := args[p.rest:]
			if len(rest) == 0 {
				rest = []arg{{s: "echo", lit: true}}
			}
			out := make([]arg, 0, len(rest)+1)
			replace := p.has("I", "i", "replace")
			for i, a := range rest {
				if replace && i > 0 {
					a = arg{} // any occurrence of the replacement string becomes input
				}
				out = append(out, a)
			}
			// Arguments read from the input: any words, options included.
			return wrapped{argv: append(out, arg{})}, false
		})
	stdbuf := wrapperOpts(optSpec{short: "i:o:e:", long: []string{"input=", "output=", "error=", "help", "version"}}, nil)
	setsid := wrapperOpts(optSpec{short: "cfw", long: []string{"ctty", "fork", "wait", "help", "version"}}, nil)
	ionice := wrapperOpts(optSpec{short: "c:n:p:P:tu:", long: []string{"class=", "classdata=", "pid=", "pgid=", "ignore", "uid=", "help", "version"}},
		func(s *Shell, p parsed, _ []arg) (wrapped, bool) {
			if p.has("p", "pid", "P", "pgid", "u", "uid") {
				s.mark(ClassWrite, "ionice changes a running process")
				return wrapped{}, true
			}
			return wrapped{}, false
		})
	taskset := wrapperOpts(optSpec{short: "acp", long: []string{"all-tasks", "cpu-list", "pid", "help", "version"}},
		func(s *Shell, p parsed, args []arg) (wrapped, bool) {
			if p.has("p", "pid") {
				s.mark(ClassWrite, "taskset changes a running process")
				return wrapped{}, true
			}
			if p.rest+1 >= len(args) {
				s.mark(ClassRead, "")
				return wrapped{}, true
			}
			return wrapped{argv: args[p.rest+1:]}, false
		})
	timeProg := wrapperOpts(optSpec{short: "af:o:pqv", long: []string{"append", "format=", "output=", "portability", "quiet", "verbose", "help", "version"}},
		func(s *Shell, p parsed, _ []arg) (wrapped, bool) {
			for _, o := range p.values("o", "output") {
				s.writeTo(o, "time -o writes a file")
			}
			return wrapped{}, false
		})
	watch := wrapperOpts(optSpec{short: "bcCd::egn:pq:rs:tw:x", long: []string{
		"beep", "color", "no-color",
		"differences?", "errexit", "chgexit", "interval=", "precise", "equexit=", "no-rerun", "shell=", "no-title",
		"no-wrap", "exec", "help", "version",
	}},
		func(s *Shell, p parsed, args []arg) (wrapped, bool) {
			if p.has("s", "shell") {
				s.mark(ClassUnknown, "watch runs a chosen shell")
				return wrapped{}, true
			}
			if p.has("x", "exec") || p.rest >= len(args) {
				return wrapped{}, false
			}
			return runCode(joinArgs(args[p.rest:])), false
		})
	busybox := func(s *Shell, args []arg) (wrapped, bool) {
		if len(args) == 0 || (args[0].lit && strings.HasPrefix(args[0].s, "--")) {
			if len(args) > 0 && strings.HasPrefix(args[0].s, "--install") {
				s.mark(ClassWrite, "busybox --install creates links")
			} else {
				s.mark(ClassRead, "")
			}
			return wrapped{}, true
		}
		return wrapped{argv: args}, false
	}
	builtin := func(s *Shell, args []arg) (wrapped, bool) {
		if len(args) == 0 {
			s.mark(ClassRead, "")
			return wrapped{}, true
		}
		return wrapped{argv: args}, false
	}
	wrappers = map[string]wrapper{
		"sudo": sudo, "doas": wrapperOpts(optSpec{short: "C:Lnsu:"}, func(s *Shell, p parsed, args []arg) (wrapped, bool) {
			if p.has("s") || p.rest >= len(args) {
				s.mark(ClassDynamic, "starts an interactive shell")
				return wrapped{}, true
			}
			return wrapped{}, false
		}),
		"su": su, "runuser": runuser, "env": env, "exec": exec, "command": command, "builtin": builtin,
		"nohup": plain, "nice": nice, "timeout": timeout, "chroot": chroot, "flock": flock, "xargs": xargs,
		"stdbuf": stdbuf, "setsid": setsid, "ionice": ionice, "taskset": taskset, "time": timeProg,
		"watch": watch, "busybox": busybox, "toybox": busybox,
		"chrt": firstOperand(optSpec{short: "bdefiopramRT:P:D:", long: []string{
			"batch", "deadline", "fifo",
			"idle", "other", "rr", "all-tasks", "pid", "max", "reset-on-fork", "verbose", "sched-runtime=",
			"sched-period=", "sched-deadline=", "help", "version",
		}}),
	}
}
