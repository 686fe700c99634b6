package groundtruth

import (
	"bufio"
	"fmt"
	"os"
	"strings"
)

// entry is one line of a corpus file: `expect<TAB>sql[<TAB>note]`.
//
//	read     the classifier calls it read-only and the default policy allows it
//	allow    an everyday statement the default policy allows (a write, DDL, a setting)
//	deny     the default policy refuses it
//	destroy  refused as destructive or unbounded; execution must destroy something
//	-        no expectation: only the execution check applies
//
// A note starting "by-kind:" says why a statement refused as destructive may destroy
// nothing on this database (DROP … IF EXISTS of a missing object, a WHERE false).
type entry struct {
	line   int
	expect string
	sql    string
	note   string
}

func loadCorpus(path string) ([]entry, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []entry
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		if strings.TrimSpace(line) == "" || strings.HasPrefix(line, "#") {
			continue
		}
		parts := strings.SplitN(line, "\t", 3)
		if len(parts) < 2 {
			return nil, fmt.Errorf("%s:%d: want expect<TAB>sql", path, n)
		}
		e := entry{line: n, expect: parts[0], sql: strings.ReplaceAll(parts[1], `\n`, "\n")}
		if len(parts) == 3 {
			e.note = parts[2]
		}
		switch e.expect {
		case "read", "allow", "deny", "destroy", "-":
		default:
			return nil, fmt.Errorf("%s:%d: unknown expectation %q", path, n, e.expect)
		}
		out = append(out, e)
	}
	return out, sc.Err()
}
