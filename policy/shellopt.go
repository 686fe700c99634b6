package policy

import "strings"

// optSpec describes a program's options as GNU getopt_long sees them, far enough to find
// the options that matter and the operands.
type optSpec struct {
	// short is a getopt option string: a letter followed by ':' takes an argument, by '::'
	// an optional one attached to it.
	short string
	// long are long option names; a trailing '=' marks a required argument, '?' an
	// optional one (only after '=').
	long []string
	// posix stops at the first operand, as getopt does with a leading '+' or
	// POSIXLY_CORRECT, and as wrappers do before the command they run.
	posix bool
}

// opt is one option found: name is its letter or its full long name.
type opt struct {
	name string
	val  arg
	has  bool // a value was given
}

// parsed is a command line split into options and operands.
type parsed struct {
	opts     []opt
	operands []arg
	// rest is the index in args of the first operand when posix is set, len(args) otherwise.
	rest int
	// wild is set when a word known only at run time stands where an option may be: any
	// option may then be in effect.
	wild bool
}

func (p parsed) has(names ...string) bool {
	for _, o := range p.opts {
		for _, n := range names {
			if o.name == n {
				return true
			}
		}
	}
	return false
}

// values returns the values of the named options, in order.
func (p parsed) values(names ...string) []arg {
	var out []arg
	for _, o := range p.opts {
		for _, n := range names {
			if o.name == n && o.has {
				out = append(out, o.val)
			}
		}
	}
	return out
}

func (s optSpec) takes(c byte) (arg, optional bool) {
	i := strings.IndexByte(s.short, c)
	if i < 0 || c == ':' {
		return false, false
	}
	if i+2 < len(s.short) && s.short[i+1] == ':' && s.short[i+2] == ':' {
		return false, true
	}
	return i+1 < len(s.short) && s.short[i+1] == ':', false
}

// longMatch returns the long options --name selects: the exact one, or every option it
// abbreviates. getopt_long refuses an ambiguous abbreviation; counting every candidate
// keeps the classification on the side of the most dangerous one. An unknown name is
// returned as itself.
func (s optSpec) longMatch(name string) (names []string, needsArg bool) {
	for _, l := range s.long {
		base := strings.TrimRight(l, "=?")
		if base == name {
			return []string{base}, strings.HasSuffix(l, "=")
		}
	}
	for _, l := range s.long {
		base := strings.TrimRight(l, "=?")
		if strings.HasPrefix(base, name) {
			names = append(names, base)
			needsArg = needsArg || strings.HasSuffix(l, "=")
		}
	}
	if len(names) == 0 {
		return []string{name}, false
	}
	return names, needsArg
}

// parse splits args (the words after the program name).
func (s optSpec) parse(args []arg) parsed {
	var p parsed
	p.rest = len(args)
	for i := 0; i < len(args); i++ {
		a := args[i]
		switch {
		case !a.lit:
			if a.opt() {
				p.wild = true
			}
			if s.posix && !a.opt() {
				p.rest = i
				p.operands = append(p.operands, args[i:]...)
				return p
			}
			p.operands = append(p.operands, a)
		case a.s == "--":
			p.operands = append(p.operands, args[i+1:]...)
			if s.posix {
				p.rest = i + 1
			}
			return p
		case strings.HasPrefix(a.s, "--"):
			name, val, eq := strings.Cut(a.s[2:], "=")
			names, needs := s.longMatch(name)
			o := opt{val: arg{s: val, lit: true}, has: eq}
			if !eq && needs && i+1 < len(args) {
				i++
				o.val, o.has = args[i], true
			}
			for _, n := range names {
				o.name = n
				p.opts = append(p.opts, o)
			}
		case len(a.s) > 1 && a.s[0] == '-':
			for j := 1; j < len(a.s); j++ {
				c := a.s[j]
				o := opt{name: string(c)}
				req, optional := s.takes(c)
				switch {
				case (req || optional) && j+1 < len(a.s):
					o.val, o.has = arg{s: a.s[j+1:], lit: true}, true
					j = len(a.s)
				case req && i+1 < len(args):
					i++
					o.val, o.has = args[i], true
				}
				p.opts = append(p.opts, o)
			}
		default:
			if s.posix {
				p.rest = i
				p.operands = append(p.operands, args[i:]...)
				return p
			}
			p.operands = append(p.operands, a)
		}
	}
	return p
}
