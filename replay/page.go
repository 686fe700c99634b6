package replay

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"io"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/mcpguard/mcpguard/approvals"
	"github.com/mcpguard/mcpguard/recordings"
)

// longValue is the length in characters above which a message is folded (complete,
// behind a click); headValue is how much of it shows folded.
const (
	longValue = 300
	headValue = 160
)

const style = `body{font-family:system-ui,sans-serif;margin:2rem;max-width:90rem}
table{border-collapse:collapse;width:100%}td,th{border:1px solid #ddd;padding:.3rem;vertical-align:top;text-align:left}
code,.v{font-family:ui-monospace,monospace;white-space:pre-wrap;word-break:break-all}
form.search{display:grid;grid-template-columns:repeat(4,max-content auto);gap:.3rem .6rem;align-items:center}
.msg{padding:.5rem;background:#eef;margin-bottom:1rem}.err{background:#fee}
.verdict{font-size:1.2rem;padding:.6rem 1rem;margin:1rem 0;border:2px solid}
.verdict.ok{background:#efe;border-color:#393}.verdict.fail{background:#fdd;border-color:#c00}
tr.denial td{background:#fee}tr.note td{background:#f7f7f7}tr.hold td{background:#ffd}
tr:target td{outline:2px solid #36c}`

var funcs = template.FuncMap{
	"when": func(t time.Time) string {
		if t.IsZero() {
			return "(unknown)"
		}
		return t.UTC().Format("2006-01-02 15:04:05.000 UTC")
	},
	"vis":   approvals.Visible,
	"long":  func(v string) bool { return utf8.RuneCountInString(v) > longValue },
	"head":  head,
	"runes": utf8.RuneCountInString,
	"join":  func(s []string) string { return approvals.Visible(strings.Join(s, ", ")) },
	"path":  url.PathEscape,
}

var searchTmpl = template.Must(template.New("search").Funcs(funcs).Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>mcpguard recordings</title><style>` + style + `</style></head><body>
<h1>Recordings</h1>
<p>Signed in as <strong id="who">{{vis .Who}}</strong>. Read-only.</p>
<form class="search" method="get" action="recordings">
<label for="since">Since</label><input id="since" name="since" value="{{.F.Since}}" placeholder="7d, 2026-01-31, RFC 3339">
<label for="until">Until</label><input id="until" name="until" value="{{.F.Until}}">
<label for="identity">Identity</label><input id="identity" name="identity" value="{{.F.Identity}}" placeholder="subject or client id (exact)">
<label for="tool">Tool</label><input id="tool" name="tool" value="{{.F.Tool}}">
<label for="rule">Rule</label><input id="rule" name="rule" value="{{.F.Rule}}">
<label for="decision">Decision</label><input id="decision" name="decision" value="{{.F.Decision}}" placeholder="allow, deny, approve…">
<label for="request_id">Request id</label><input id="request_id" name="request_id" value="{{.F.RequestID}}">
<label for="session">Session id (prefix)</label><input id="session" name="session" value="{{.F.Session}}">
<span></span><button type="submit" id="search">Search</button>
</form>
{{if .Message}}<p class="msg{{if .Error}} err{{end}}" id="message">{{.Message}}</p>{{end}}
{{range .Notes}}<p class="msg note">{{vis .}}</p>{{end}}
{{if .Searched}}
<p id="count">{{.Total}} session(s){{if gt .Total (len .Results)}}; the {{len .Results}} most recent are listed: narrow the search to see the others{{end}}.</p>
{{if .Results}}<table id="results"><thead><tr><th>Session</th><th>Started</th><th>Ended</th><th>Identity</th><th>Events</th><th>Tools</th><th>Decisions</th><th>Rules</th></tr></thead><tbody>
{{range .Results}}<tr><td><a class="session" href="recordings/{{path .Name}}{{if $.Query}}?{{$.Query}}{{end}}"><code>{{vis .Name}}</code></a>{{if .Unindexed}} <small>(not in the index)</small>{{end}}</td>
<td>{{when .Sum.Started}}</td><td>{{when .Sum.Ended}}</td>
<td class="v">{{with .Sum.Identity}}{{vis .Subject}}{{if .ClientID}} (client {{vis .ClientID}}){{end}}{{else}}(none){{end}}</td>
<td>{{.Sum.Events}}</td><td class="v">{{join .Sum.Facets.Tools}}</td><td class="v">{{join .Sum.Facets.Decisions}}</td><td class="v">{{join .Sum.Facets.Rules}}</td></tr>
{{end}}</tbody></table>{{end}}
{{end}}
</body></html>
`))

var sessionTmpl = template.Must(template.New("session").Funcs(funcs).Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>mcpguard recording</title><style>` + style + `</style></head><body>
<p><a id="back" href="../recordings{{if .Query}}?{{.Query}}{{end}}">← search</a> · Signed in as <strong id="who">{{vis .Who}}</strong>. Read-only.</p>
<h1>Session <code id="session">{{vis .Name}}</code></h1>
{{if .Verified}}<p class="verdict ok" id="verdict">✔ Verified: {{.Verdict.Chains}} chain(s), {{.Verdict.Segments}} segment(s), {{.Verdict.Events}} event(s); signatures, hash chains and the index agree.</p>
{{else}}<div class="verdict fail" id="verdict"><p><strong>✘ Verification FAILED.</strong> Do not trust what follows without finding out why:</p><ul>{{range .Problems}}<li class="problem">{{vis .}}</li>{{end}}</ul></div>{{end}}
{{if .Unindexed}}<p class="msg err">This session is in no index (lost index, open chain, or objects copied into storage).</p>{{end}}
<dl>
<dt>Identity</dt><dd class="v">{{with .Sum.Identity}}{{vis .Subject}}{{if .ClientID}} (client {{vis .ClientID}}){{end}}, issuer {{vis .Issuer}}{{if .Groups}}, groups {{join .Groups}}{{end}}{{else}}(none){{end}}</dd>
<dt>Started</dt><dd>{{when .Sum.Started}}</dd><dt>Ended</dt><dd>{{when .Sum.Ended}}</dd>
</dl>
<p>Values are shown in full (long ones folded: click to see all). Escapes make hidden characters visible: <code>\t \n \r \\</code>, <code>\uXXXX</code> for control, zero-width and bidirectional characters, <code>␠×N</code> for N spaces in a row. Sealed originals are never shown here (<code>mcpguard recordings unseal</code>).</p>
{{if .ReadError}}<p class="msg err" id="read-error">Events could not be read: {{vis .ReadError}}</p>{{end}}
<table id="timeline"><thead><tr><th>Time</th><th>Event</th><th>Request</th><th>What</th><th>Content</th></tr></thead><tbody>
{{range .Rows}}<tr class="{{.Class}}"{{if .Anchor}} id="{{.Anchor}}"{{end}}><td>{{when .Time}}{{if .Gap}}<br><small class="gap">+{{.Gap}}</small>{{end}}</td>
<td>{{.Kind}}</td><td class="v">{{vis .RequestID}}</td><td class="v what">{{vis .What}}</td>
<td class="v content">{{if .Sealed}}<p class="sealed"><em>sealed original kept (not shown)</em></p>{{end}}{{if long .Content}}<details><summary>{{head .Content}} … ({{runes .Content}} characters: show all)</summary>{{.Content}}</details>{{else}}{{.Content}}{{end}}</td></tr>
{{end}}</tbody></table>
</body></html>
`))

var refuseTmpl = template.Must(template.New("refuse").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>mcpguard recordings</title><style>` + style + `</style></head><body>
<h1>Recordings</h1><p class="msg err" id="message">{{.}}</p></body></html>
`))

func head(v string) string {
	n := 0
	for i := range v {
		if n == headValue {
			return v[:i]
		}
		n++
	}
	return v
}

func headers(w http.ResponseWriter) {
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
}

func render(w http.ResponseWriter, code int, t *template.Template, d any) {
	var b bytes.Buffer
	if err := t.Execute(&b, d); err != nil {
		http.Error(w, "could not render the page", http.StatusInternalServerError)
		return
	}
	headers(w)
	w.WriteHeader(code)
	_, _ = w.Write(b.Bytes())
}

func (rp *Replay) refuse(w http.ResponseWriter, code int, msg string) {
	render(w, code, refuseTmpl, msg)
}

type result struct {
	Name      string
	Unindexed bool
	Sum       recordings.Summary
}

type searchData struct {
	Who      string
	F        filters
	Query    string
	Message  string
	Error    bool
	Notes    []string
	Searched bool
	Total    int
	Results  []result
}

func (rp *Replay) search(w http.ResponseWriter, r *http.Request, who string) {
	f, q, err := rp.parse(r)
	d := searchData{Who: who, F: f, Query: f.encode()}
	if err != nil {
		d.Message, d.Error = "Search not run: "+approvals.Visible(err.Error()), true
		render(w, http.StatusBadRequest, searchTmpl, d)
		return
	}
	if f.empty() {
		d.Message = "Fill in any filter and search; leave all empty and search to list every session."
		if r.URL.RawQuery == "" {
			render(w, http.StatusOK, searchTmpl, d)
			return
		}
	}
	a := recordings.NewArchive(rp.sink, rp.prefix)
	found, err := a.Search(r.Context(), q)
	if err != nil {
		rp.o.Log.Error("recordings replay search", "err", err.Error())
		d.Message, d.Error = "The search failed: storage could not be read.", true
		render(w, http.StatusInternalServerError, searchTmpl, d)
		return
	}
	d.Message, d.Searched, d.Notes, d.Total = "", true, found.Notes, len(found.Sessions)
	for _, s := range found.Sessions {
		d.Results = append(d.Results, result{Name: s.Name, Unindexed: s.Unindexed, Sum: s.Summary()})
	}
	sort.SliceStable(d.Results, func(i, j int) bool { return d.Results[i].Sum.Started.After(d.Results[j].Sum.Started) })
	if len(d.Results) > maxResults {
		d.Results = d.Results[:maxResults]
	}
	// A link to a request (from the approvals page) that names one session opens it there.
	if f.RequestID != "" && len(d.Results) == 1 {
		loc := "recordings/" + url.PathEscape(d.Results[0].Name) + "?" + f.encode() + "#" + anchor(f.RequestID)
		// Set directly: http.Redirect would make it absolute, leaving a proxy's path prefix.
		w.Header().Set("Cache-Control", "no-store")
		w.Header().Set("Location", loc)
		w.WriteHeader(http.StatusSeeOther)
		return
	}
	render(w, http.StatusOK, searchTmpl, d)
}

// anchor is the timeline row id of a request's first event.
func anchor(requestID string) string { return "req-" + url.PathEscape(requestID) }

type row struct {
	Time      time.Time
	Gap       string
	Kind      recordings.Kind
	Class     string
	RequestID string
	Anchor    string
	What      string
	Content   string // made visible
	Sealed    bool
}

type sessionData struct {
	Who       string
	Name      string
	Query     string
	Verified  bool
	Verdict   recordings.Verdict
	Problems  []string
	Unindexed bool
	Sum       recordings.Summary
	ReadError string
	Rows      []row
}

func (rp *Replay) session(w http.ResponseWriter, r *http.Request, who string) {
	ref := r.PathValue("session")
	f, _, _ := rp.parse(r)
	a := recordings.NewArchive(rp.sink, rp.prefix)
	s, err := a.Resolve(r.Context(), ref, recordings.Query{})
	var amb *recordings.AmbiguousError
	switch {
	case errors.As(err, &amb):
		rp.refuse(w, http.StatusConflict, fmt.Sprintf("%q names several sessions: %s. Give more of the id.", approvals.Visible(ref), approvals.Visible(strings.Join(amb.Candidates, ", "))))
		return
	case errors.Is(err, recordings.ErrNotFound):
		rp.refuse(w, http.StatusNotFound, fmt.Sprintf("No recorded session %q.", approvals.Visible(ref)))
		return
	case err != nil:
		rp.o.Log.Error("recordings replay resolve", "err", err.Error())
		rp.refuse(w, http.StatusInternalServerError, "Storage could not be read.")
		return
	}
	d := sessionData{Who: who, Name: s.Name, Query: f.encode(), Unindexed: s.Unindexed, Sum: s.Summary()}
	v, err := a.Verify(r.Context(), s, rp.o.PublicKey)
	if err != nil {
		d.Problems = []string{"verification could not run: " + err.Error()}
	} else {
		d.Verdict, d.Verified, d.Problems = v, v.OK(), v.Problems
	}
	evs, err := a.Events(r.Context(), s)
	if err != nil {
		d.ReadError = err.Error()
	}
	d.Rows = rows(evs)
	render(w, http.StatusOK, sessionTmpl, d)
}

// rows lays out the timeline: one row per event, the first of each request anchored,
// holds marked with how long the call waited.
func rows(evs []recordings.Event) []row {
	out := make([]row, 0, len(evs))
	seen := map[string]bool{}
	received := map[string]time.Time{}
	for _, e := range evs {
		rw := row{Time: e.Time, Kind: e.Kind, Class: string(e.Kind), RequestID: e.RequestID, Sealed: e.Sealed != ""}
		if e.RequestID != "" && !seen[e.RequestID] && e.Kind != recordings.KindSessionStart {
			seen[e.RequestID], rw.Anchor = true, anchor(e.RequestID)
		}
		var what []string
		if e.HTTP != "" {
			what = append(what, e.HTTP)
		}
		if e.Method != "" {
			what = append(what, e.Method)
		}
		if e.Tool != "" {
			what = append(what, "tool "+e.Tool)
		}
		if e.Status != 0 {
			what = append(what, fmt.Sprintf("status %d", e.Status))
		}
		if e.SSE != nil {
			what = append(what, "SSE event "+e.SSE.ID+" "+e.SSE.Name)
		}
		switch e.Kind {
		case recordings.KindRequest:
			received[e.RequestID] = e.Time
		case recordings.KindSessionStart, recordings.KindSessionEnd:
			if e.Identity != nil {
				what = append(what, "identity "+e.Identity.Subject)
			}
		case recordings.KindForward, recordings.KindResponse, recordings.KindDenial, recordings.KindNote:
		}
		if e.Note != nil {
			what = append(what, e.Note.Stage+" "+e.Note.Kind)
			switch {
			case hold(e.Note):
				rw.Class = "note hold"
			case e.Note.Kind == "masked" || e.Note.Kind == "unmaskable":
				rw.Class = "note masking"
			}
			rw.Gap = since(received, e)
			if len(e.Note.Attrs) > 0 {
				rw.Content = display(mustJSON(e.Note.Attrs))
			}
		}
		if e.Kind == recordings.KindForward {
			rw.Gap = since(received, e)
		}
		if len(e.Message) > 0 {
			rw.Content = display(e.Message)
		}
		rw.What = strings.Join(what, " · ")
		out = append(out, rw)
	}
	return out
}

// since is how long after its request was received e happened, when that is 1 ms or more.
func since(received map[string]time.Time, e recordings.Event) string {
	t, ok := received[e.RequestID]
	if !ok || t.IsZero() {
		return ""
	}
	if d := e.Time.Sub(t).Round(time.Millisecond); d > 0 {
		return d.String() + " after receipt"
	}
	return ""
}

// hold reports a note about a held call or its approval.
func hold(n *recordings.Note) bool { return n.Stage == "approvals" }

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		return []byte(fmt.Sprintf("(unreadable: %v)", err))
	}
	return b
}

// display is raw JSON on one line with its strings decoded and made visible (so
// "\u003c" reads "<" and a hidden character reads \uXXXX), members in their recorded
// order; it is never cut. What is not JSON is shown as it is, made visible.
func display(raw []byte) string {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var b strings.Builder
	type frame struct {
		object bool
		n      int
	}
	var stack []frame
	for {
		tok, err := dec.Token()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return approvals.Visible(string(raw))
		}
		if d, ok := tok.(json.Delim); ok && (d == '}' || d == ']') {
			stack = stack[:len(stack)-1]
			b.WriteRune(rune(d))
			continue
		}
		if len(stack) > 0 {
			top := &stack[len(stack)-1]
			switch {
			case top.object && top.n%2 == 1:
				b.WriteByte(':')
			case top.n > 0:
				b.WriteByte(',')
			}
			top.n++
		}
		switch v := tok.(type) {
		case json.Delim:
			b.WriteRune(rune(v))
			stack = append(stack, frame{object: v == '{'})
		case string:
			b.WriteByte('"')
			b.WriteString(strings.ReplaceAll(approvals.Visible(v), `"`, `\"`))
			b.WriteByte('"')
		case json.Number:
			b.WriteString(v.String())
		case bool:
			fmt.Fprint(&b, v)
		case nil:
			b.WriteString("null")
		}
	}
	return b.String()
}
