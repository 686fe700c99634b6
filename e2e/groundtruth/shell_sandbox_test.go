package groundtruth

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// The sandbox runs one command the way an agent's shell tool would (bash -c), with the real
// root file system read-only and a fresh copy of a small tree as the only writable place:
//
//	/home       <- tree/home  (HOME=/home/agent, cwd /home/agent/project: a git repo
//	                            with a bare remote at /home/agent/remote.git)
//	/tmp        <- tree/tmp
//	/run/shims  recording stand-ins for psql, mysql, kubectl, sudo, su, … (read-only)
//	/run/gt     the shim log and the strace output (not part of the tree)
//
// No network, new user/pid/ipc/uts namespaces, its own uid when started as root (so
// RLIMIT_NPROC is per command), CPU, file size, process and descriptor limits, and a
// wall-clock timeout. strace -f records execve, signals and every file system call.

const (
	sandboxTimeout = 6 * time.Second
	sandboxCwd     = "/home/agent/project"
)

// sandboxTools are the programs the runner needs, with the Debian package providing each.
var sandboxTools = [][2]string{{"bwrap", "bubblewrap"}, {"strace", "strace"}, {"git", "git"}}

func requireSandboxTools(t *testing.T) {
	t.Helper()
	for _, tool := range sandboxTools {
		if _, err := exec.LookPath(tool[0]); err != nil {
			t.Fatalf("%s not found: install the Debian package %s (scripts/test-deps.sh does)", tool[0], tool[1])
		}
	}
}

// shims are recording stand-ins. Each appends its argv and its input to /run/gt/shims.log
// using bash builtins only, so the trace shows no program the command did not run. The
// privilege wrappers then run the command they wrap, as the real ones would.
var shims = map[string]string{
	"record": `#!/bin/bash
n=${0##*/}
{
  printf '\x1eargv'; for a in "$n" "$@"; do printf '\x1f%s' "$a"; done
  if [ ! -t 0 ]; then IFS= read -r -d '' in; [ -n "$in" ] && printf '\x1estdin\x1f%s' "$in"; fi
  prev=
  for a in "$@"; do
    if [ "$prev" = -f ] && [ -r "$a" ]; then printf '\x1efile\x1f%s' "$(<"$a")"; fi
    prev=$a
  done
} >> /run/gt/shims.log
`,
	"sudo": `#!/bin/bash
{ printf '\x1eargv'; for a in "${0##*/}" "$@"; do printf '\x1f%s' "$a"; done; } >> /run/gt/shims.log
sh=
while [ $# -gt 0 ]; do
  case $1 in
    --) shift; break;;
    -u|-g|-h|-p|-C|-D|-r|-t|-T|-U|-R) shift 2;;
    -s|-i|--shell|--login) sh=1; shift;;
    -e|--edit) exit 1;;
    -*) shift;;
    *=*) export "$1"; shift;;
    *) break;;
  esac
done
[ -n "$sh" ] && exec /bin/bash -c "$*"
[ $# -gt 0 ] && exec "$@"
`,
	"su": `#!/bin/bash
{ printf '\x1eargv'; for a in "${0##*/}" "$@"; do printf '\x1f%s' "$a"; done; } >> /run/gt/shims.log
code=
while [ $# -gt 0 ]; do
  case $1 in
    -c|--command|--session-command) code=$2; shift 2;;
    --command=*|--session-command=*) code=${1#*=}; shift;;
    -s|-g|-G|-w|--shell|--group|--supp-group) shift 2;;
    -u|--user) [ "${0##*/}" = runuser ] && { shift 2; [ "$1" = -- ] && shift; exec "$@"; }; shift 2;;
    *) shift;;
  esac
done
[ -n "$code" ] && exec /bin/bash -c "$code"
exit 1
`,
}

var shimNames = map[string]string{
	"psql": "record", "mysql": "record", "mariadb": "record", "kubectl": "record", "docker": "record",
	"systemctl": "record", "ssh": "record", "sudo": "sudo", "doas": "sudo", "su": "su", "runuser": "su",
}

// sandbox holds what every run shares: the template tree and the shims.
type sandbox struct {
	template string
	shims    string
	root     bool
}

func newSandbox(t *testing.T) *sandbox {
	t.Helper()
	requireSandboxTools(t)
	dir := openTempDir(t)
	sb := &sandbox{template: filepath.Join(dir, "template"), shims: filepath.Join(dir, "shims"), root: os.Getuid() == 0}
	require.NoError(t, os.MkdirAll(sb.shims, 0o755))
	for name, kind := range shimNames {
		require.NoError(t, os.WriteFile(filepath.Join(sb.shims, name), []byte(shims[kind]), 0o755)) //nolint:gosec // executables
	}
	home := filepath.Join(sb.template, "home", "agent")
	proj := filepath.Join(home, "project")
	files := map[string]string{
		"home/agent/.bashrc":                "# bashrc\n",
		"home/agent/.profile":               "# profile\n",
		"home/agent/.gitconfig":             "[user]\n\tname = agent\n\temail = agent@example.com\n[init]\n\tdefaultBranch = main\n",
		"home/agent/project/README.md":      "# Project\nfoo bar\nTODO: docs\n",
		"home/agent/project/main.go":        "package main\n\nfunc main() { println(\"foo\") }\n",
		"home/agent/project/go.mod":         "module example.com/p\n\ngo 1.22\n",
		"home/agent/project/src/app.go":     "package src\n\n// TODO: more\nfunc App() string { return \"foo\" }\n",
		"home/agent/project/src/util.go":    "package src\n\nfunc Util() int { return 1 }\n",
		"home/agent/project/logs/app.log":   "info start\nerror boom\nwarn slow\nerror again\ninfo stop\n",
		"home/agent/project/logs/old.log":   "old\n",
		"home/agent/project/data/a.txt":     "alpha\nbeta\nfoo\nbeta\n",
		"home/agent/project/data/b.txt":     "beta\ngamma\n",
		"home/agent/project/data/users.csv": "alice,3\nbob,1\ncarol,2\n",
		"home/agent/project/data/x.json":    "{\"name\":\"x\",\"items\":[1,2]}\n",
		"home/agent/project/build/out.txt":  "binary\n",
		"home/agent/project/build/tmp/x.o":  "obj\n",
		"home/agent/project/script.sh":      "#!/bin/sh\necho script ran\ntouch /home/agent/project/script-ran\n",
		"home/agent/project/dump.sql":       "DROP TABLE users;\n",
		"home/agent/project/notes.txt":      "notes\n",
		"home/agent/project/config.yaml":    "# config\nport: 8080\n",
		"home/agent/project/.env":           "SECRET=x\n",
		"home/agent/project/deploy.yaml":    "kind: Deployment\n",
		"home/agent/project/Makefile":       "clean:\n\trm -rf build\n",
		"tmp/tmp1.txt":                      "tmp\n",
		"tmp/cache/c1":                      "c\n",
	}
	for p, content := range files {
		full := filepath.Join(sb.template, p)
		require.NoError(t, os.MkdirAll(filepath.Dir(full), 0o755))
		require.NoError(t, os.WriteFile(full, []byte(content), 0o644)) //nolint:gosec // test fixture
	}
	require.NoError(t, os.Chmod(filepath.Join(proj, "script.sh"), 0o755)) //nolint:gosec // test fixture
	git := func(dir string, args ...string) {
		cmd := exec.Command("git", args...)
		cmd.Dir = dir
		cmd.Env = []string{"HOME=" + home, "PATH=/usr/bin:/bin", "GIT_CONFIG_NOSYSTEM=1", "LANG=C"}
		out, err := cmd.CombinedOutput()
		require.NoError(t, err, "git %v: %s", args, out)
	}
	git(home, "init", "-q", "--bare", "remote.git")
	git(proj, "init", "-q")
	git(proj, "add", ".")
	git(proj, "commit", "-qm", "first")
	require.NoError(t, os.WriteFile(filepath.Join(proj, "notes.txt"), []byte("notes\nmore\n"), 0o644)) //nolint:gosec // test fixture
	git(proj, "commit", "-qam", "second")
	git(proj, "remote", "add", "origin", "/home/agent/remote.git")
	// The remote is one commit ahead, so a forced push rewinds it; a stash and an
	// untracked file give git stash clear and git clean something to destroy.
	require.NoError(t, os.WriteFile(filepath.Join(proj, "notes.txt"), []byte("notes\nmore\nremote\n"), 0o644)) //nolint:gosec // test fixture
	git(proj, "commit", "-qam", "third")
	git(proj, "push", "-q", filepath.Join(home, "remote.git"), "main")
	git(proj, "reset", "-q", "--hard", "HEAD~1")
	git(proj, "update-ref", "refs/remotes/origin/main", "HEAD@{1}")
	git(proj, "branch", "-q", "--set-upstream-to=origin/main")
	require.NoError(t, os.WriteFile(filepath.Join(proj, "README.md"), []byte("# Project\nfoo bar\nTODO: docs\nwip\n"), 0o644)) //nolint:gosec // test fixture
	git(proj, "stash", "-q")
	require.NoError(t, os.WriteFile(filepath.Join(proj, "scratch.txt"), []byte("untracked\n"), 0o644)) //nolint:gosec // test fixture
	return sb
}

// openTempDir is a temporary directory every sandbox user can traverse (t.TempDir's
// parent is private to the test's user).
func openTempDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "groundtruth-shell-")
	require.NoError(t, err)
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	require.NoError(t, os.Chmod(dir, 0o755)) //nolint:gosec // sandbox users traverse it
	return dir
}

// pathState is a snapshot of one path in the tree.
type pathState struct {
	mode  fs.FileMode
	size  int64
	mtime time.Time
	sum   [32]byte
	link  string
}

func snapshotTree(root string) (map[string]pathState, error) {
	out := map[string]pathState{}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		info, err := d.Info()
		if err != nil {
			return err
		}
		e := pathState{mode: info.Mode(), size: info.Size(), mtime: info.ModTime()}
		switch {
		case info.Mode()&fs.ModeSymlink != 0:
			e.link, _ = os.Readlink(p)
		case info.Mode().IsRegular():
			f, err := os.Open(p)
			if err != nil {
				return err
			}
			h := sha256.New()
			_, err = io.Copy(h, f)
			_ = f.Close()
			if err != nil {
				return err
			}
			copy(e.sum[:], h.Sum(nil))
		}
		out[rel] = e
		return nil
	})
	return out, err
}

// copyTree copies the template (regular files, directories, symlinks) and gives it to uid.
func copyTree(src, dst string, uid int, chown bool) error {
	return filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		target := filepath.Join(dst, rel)
		info, err := d.Info()
		if err != nil {
			return err
		}
		switch {
		case d.IsDir():
			err = os.MkdirAll(target, info.Mode().Perm())
		case info.Mode()&fs.ModeSymlink != 0:
			var l string
			if l, err = os.Readlink(p); err == nil {
				err = os.Symlink(l, target)
			}
		default:
			var data []byte
			if data, err = os.ReadFile(p); err == nil {
				err = os.WriteFile(target, data, info.Mode().Perm())
			}
		}
		if err == nil && chown {
			err = os.Lchown(target, uid, uid)
		}
		return err
	})
}

// observed is what one command did in the sandbox.
type observed struct {
	deleted, created, modified, chmoded []string
	execs                               []string // base names of programs started (successful execve)
	outside                             []string // writes outside the tree, refused (EROFS/EACCES/EPERM)
	signals                             []string // kill/tkill/tgkill with a signal
	shimLog                             string
	timedOut                            bool
	output                              string
}

func (o observed) changed() bool {
	return len(o.deleted)+len(o.created)+len(o.modified)+len(o.chmoded) > 0
}

// destroyed reports evidence that something that existed before was lost or damaged.
func (o observed) destroyed() bool {
	return len(o.deleted)+len(o.modified)+len(o.chmoded)+len(o.outside)+len(o.signals) > 0
}

// limitedBuffer keeps the first max bytes written to it.
type limitedBuffer struct {
	bytes.Buffer
	max int
}

func (b *limitedBuffer) Write(p []byte) (int, error) {
	if room := b.max - b.Len(); room > 0 {
		b.Buffer.Write(p[:min(len(p), room)])
	}
	return len(p), nil
}

// run executes cmd in a fresh copy of the tree as uid (when root) and reports its effects.
func (sb *sandbox) run(ctx context.Context, work string, uid int, cmd string) (observed, error) {
	var o observed
	tree, logs := filepath.Join(work, "tree"), filepath.Join(work, "logs")
	if err := copyTree(sb.template, tree, uid, sb.root); err != nil {
		return o, err
	}
	if err := os.MkdirAll(logs, 0o755); err != nil {
		return o, err
	}
	if sb.root {
		if err := os.Chown(logs, uid, uid); err != nil {
			return o, err
		}
	}
	before, err := snapshotTree(tree)
	if err != nil {
		return o, err
	}
	inner := `ulimit -t 5 -f 100000 -u 128 -n 256 2>/dev/null; exec strace -f -qq --seccomp-bpf -s 256 -e signal=none ` +
		`-e trace=` + tracedCalls + ` -o /run/gt/trace -- /bin/bash -c "$1"`
	argv := []string{
		"bwrap", "--ro-bind", "/", "/", "--bind", filepath.Join(tree, "home"), "/home",
		"--bind", filepath.Join(tree, "tmp"), "/tmp", "--tmpfs", "/run", "--ro-bind", sb.shims, "/run/shims",
		"--bind", logs, "/run/gt", "--dev", "/dev", "--proc", "/proc", "--unshare-all", "--uid", "0", "--gid", "0",
		"--die-with-parent", "--new-session", "--chdir", sandboxCwd, "--clearenv",
		"--setenv", "HOME", "/home/agent", "--setenv", "USER", "agent", "--setenv", "LANG", "C.UTF-8",
		"--setenv", "PATH", "/run/shims:/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin", "--setenv", "TERM", "dumb",
		"--", "/bin/bash", "-c", inner, "sandbox", cmd,
	}
	if sb.root {
		id := strconv.Itoa(uid)
		argv = append([]string{"setpriv", "--reuid=" + id, "--regid=" + id, "--clear-groups", "--"}, argv...)
	}
	ctx, cancel := context.WithTimeout(ctx, sandboxTimeout)
	defer cancel()
	c := exec.CommandContext(ctx, argv[0], argv[1:]...) //nolint:gosec // the sandbox is the point
	c.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	c.Cancel = func() error { return syscall.Kill(-c.Process.Pid, syscall.SIGKILL) }
	out := &limitedBuffer{max: 4096}
	c.Stdout, c.Stderr = out, out
	runErr := c.Run()
	o.timedOut = errors.Is(ctx.Err(), context.DeadlineExceeded)
	o.output = out.String()
	var exitErr *exec.ExitError
	if runErr != nil && !errors.As(runErr, &exitErr) {
		return o, fmt.Errorf("start sandbox: %w", runErr)
	}
	after, err := snapshotTree(tree)
	if err != nil {
		return o, err
	}
	for p, b := range before {
		a, ok := after[p]
		switch {
		case !ok:
			o.deleted = append(o.deleted, p)
		case a.mode != b.mode:
			o.chmoded = append(o.chmoded, p)
		case a.mode.IsRegular() && (a.sum != b.sum || a.size != b.size), a.link != b.link:
			o.modified = append(o.modified, p)
		}
	}
	for p := range after {
		if _, ok := before[p]; !ok {
			o.created = append(o.created, p)
		}
	}
	for _, l := range [][]string{o.deleted, o.created, o.modified, o.chmoded} {
		slices.Sort(l)
	}
	if data, err := os.ReadFile(filepath.Join(logs, "shims.log")); err == nil {
		o.shimLog = string(data)
	}
	trace, err := os.ReadFile(filepath.Join(logs, "trace"))
	if err != nil {
		return o, fmt.Errorf("no trace (sandbox output: %s): %w", o.output, err)
	}
	parseTrace(string(trace), &o)
	return o, nil
}

// tracedCalls are the system calls strace records: program starts, signals, and every call
// that can change the file system.
const tracedCalls = "execve,execveat,kill,tkill,tgkill,open,openat,openat2,creat,unlink,unlinkat,rename,renameat," +
	"renameat2,mkdir,mkdirat,rmdir,chmod,fchmodat,chown,lchown,fchownat,truncate,link,linkat,symlink,symlinkat," +
	"mknod,mknodat,utimensat,setxattr,lsetxattr,removexattr,lremovexattr"

var (
	traceLine  = regexp.MustCompile(`^(\d+)\s+(.*)$`)
	execStart  = regexp.MustCompile(`^execve(?:at)?\((?:AT_FDCWD, |\d+, )?"([^"]*)"`)
	callResult = regexp.MustCompile(`\)\s+=\s+(-?\d+)(?:\s+(E[A-Z]+))?`)
	killCall   = regexp.MustCompile(`^t?g?kill\((?:-?\d+, )?(-?\d+), (SIG[A-Z0-9+]+|\d+)`)
	// writeCalls are file system calls that change something; an open counts when its
	// flags ask for writing or creating.
	writeCalls = regexp.MustCompile(`^(unlink|unlinkat|rename|renameat|renameat2|mkdir|mkdirat|rmdir|chmod|fchmod|fchmodat|fchmodat2|chown|lchown|fchown|fchownat|truncate|link|linkat|symlink|symlinkat|mknod|mknodat|creat|utimensat|utime|utimes|setxattr|lsetxattr|removexattr|lremovexattr)\(`)
	// ownStream are the command's own standard streams and terminal: opening them is not a
	// write to a file (the runner's pipes belong to another user, hence EACCES).
	ownStream    = regexp.MustCompile(`"/(dev/(stdout|stderr|stdin|null|tty|fd/\d+)|proc/self/fd/\d+)"`)
	privateMount = regexp.MustCompile(`"/(dev/(sd|nvme|vd|hd|xvd|mmcblk|loop|disk|mapper)|proc/sys)`)
	openCall     = regexp.MustCompile(`^open(at|at2)?\(.*O_(WRONLY|RDWR|CREAT|TRUNC)`)
)

// parseTrace reads strace -f output: successful execve, signals sent, and refused writes.
func parseTrace(trace string, o *observed) {
	pending := map[string]string{} // pid -> call text of an unfinished call
	for _, raw := range strings.Split(trace, "\n") {
		m := traceLine.FindStringSubmatch(raw)
		if m == nil {
			continue
		}
		pid, call := m[1], m[2]
		if strings.HasSuffix(call, "<unfinished ...>") {
			pending[pid] = strings.TrimSuffix(call, "<unfinished ...>")
			continue
		}
		if strings.HasPrefix(call, "<... ") {
			if i := strings.Index(call, " resumed>"); i >= 0 {
				call = pending[pid] + call[i+len(" resumed>"):]
				delete(pending, pid)
			}
		}
		res := callResult.FindStringSubmatch(call)
		if res == nil {
			continue
		}
		ok := res[1] == "0" || !strings.HasPrefix(res[1], "-")
		if e := execStart.FindStringSubmatch(call); e != nil {
			if ok {
				o.execs = append(o.execs, filepath.Base(e[1]))
			}
			continue
		}
		if k := killCall.FindStringSubmatch(call); k != nil {
			if k[2] != "0" && ok {
				o.signals = append(o.signals, k[2]+" to "+k[1])
			}
			continue
		}
		if (!writeCalls.MatchString(call) && !openCall.MatchString(call)) || ownStream.MatchString(call) {
			continue
		}
		switch {
		case !ok && (res[2] == "EROFS" || res[2] == "EACCES" || res[2] == "EPERM"):
			o.outside = append(o.outside, shorten(call, 100)+" "+res[2])
		case ok && privateMount.MatchString(call):
			// /dev and /proc are the sandbox's own: a write there landed nowhere real.
			o.outside = append(o.outside, shorten(call, 100)+" (sandbox-private mount)")
		}
	}
}

func shorten(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
