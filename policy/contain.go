package policy

import "errors"

// errParserFailed is the parse error of an input that made a parser panic.
var errParserFailed = errors.New("the parser failed on this input")

// contain runs a classifier over untrusted input. The SQL and shell parsers are third-party
// code fed by agents: a panic inside one is that input's parse failure (the statement is then
// unparsed, which policies refuse), never a crash of the gateway.
func contain[T any](f func() (T, error)) (out T, err error) {
	defer func() {
		if r := recover(); r != nil {
			var zero T
			out, err = zero, errParserFailed
		}
	}()
	return f()
}
