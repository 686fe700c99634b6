package extproc

import (
	"container/list"
	"encoding/json"
	"strings"
	"sync"
	"time"

	"github.com/mcpguard/mcpguard/mcp"
)

// correlationLimits bound what the 2024-11-05 correlation keeps: a client chooses the
// ids and may POST as many as it likes, so the table is capped per session, in total and
// in time. What is evicted is answered as uncorrelated (see [Policy.OnResponse]): a
// tools/list result is still recognised by its shape and filtered.
type correlationLimits struct {
	PerSession int           // pending requests per session; the oldest goes first
	Total      int           // pending requests of all sessions; the least recently used session goes first
	TTL        time.Duration // a request not answered within TTL is forgotten
}

// maxCorrBytes bounds what one entry keeps (the session id, or a request's id, method,
// tool, URI and prompt together). The client chooses all of them and a request may be
// megabytes, so a larger one is not kept: its answer is uncorrelated, and the session is
// marked lossy (see [corrSession]). Real ids and names are far shorter.
const maxCorrBytes = 512

// defaultCorrelationLimits: 256 requests in flight per session is far above what clients
// pipeline; 65536 entries take about 20 MiB with ordinary ids (measured ~310 bytes each
// with their session) and under 70 MiB with every entry at maxCorrBytes; an hour outlives
// the longest approval hold (max_hold is at most 1h).
func defaultCorrelationLimits() correlationLimits {
	return correlationLimits{PerSession: 256, Total: 1 << 16, TTL: time.Hour}
}

// correlations maps the requests POSTed on a 2024-11-05 session to their JSON-RPC ids, so
// the answers that arrive on the session's GET stream (another ext_proc stream) can be
// matched with what was asked. It is in-process: with several replicas the GET stream may
// be served by a replica that did not see the POST, whose answers are then uncorrelated.
type correlations struct {
	lim correlationLimits
	now func() time.Time

	mu       sync.Mutex
	sessions map[string]*corrSession
	lru      list.List // of *corrSession, most recently used first
	total    int
}

type corrSession struct {
	id    string
	el    *list.Element
	reqs  map[string]pending
	order []string // ids in arrival order; may hold ids already answered
	lossy bool     // a request was evicted or reused: some answers cannot be matched
	seen  time.Time
}

// pending is one request awaiting its answer: what response stages need of it, copied so
// the request body is not retained. reused marks an id sent twice while pending.
type pending struct {
	method, tool, uri, prompt string
	at                        time.Time
	reused                    bool
}

// request rebuilds the request envelope, nil for a reused id.
func (p pending) request(id json.RawMessage) *mcp.Message {
	if p.reused {
		return nil
	}
	return &mcp.Message{Kind: mcp.KindRequest, ID: id, Method: p.method, Tool: p.tool, URI: p.uri, Prompt: p.prompt}
}

func newCorrelations(lim correlationLimits) *correlations {
	return &correlations{lim: lim, now: time.Now, sessions: map[string]*corrSession{}}
}

// add remembers the requests of a POST to session sid.
func (c *correlations) add(sid string, msgs []mcp.Message) {
	if len(sid) > maxCorrBytes {
		return // unknown to the table: answers are uncorrelated, as on another replica
	}
	now := c.now()
	c.mu.Lock()
	defer c.mu.Unlock()
	c.expireSessions(now)
	s := c.sessions[sid]
	if s == nil {
		s = &corrSession{id: sid, reqs: map[string]pending{}}
		s.el = c.lru.PushFront(s)
		c.sessions[sid] = s
	} else {
		c.lru.MoveToFront(s.el)
	}
	s.seen = now
	c.expire(s, now)
	for i := range msgs {
		m := &msgs[i]
		if m.Kind != mcp.KindRequest || len(m.ID) == 0 {
			continue
		}
		if len(m.ID)+len(m.Method)+len(m.Tool)+len(m.URI)+len(m.Prompt) > maxCorrBytes {
			s.lossy = true
			continue
		}
		k := string(m.ID)
		if _, dup := s.reqs[k]; dup {
			// Two outstanding requests with one id: the answer cannot be attributed.
			s.reqs[k] = pending{at: now, reused: true}
			s.lossy = true
			continue
		}
		for len(s.reqs) >= c.lim.PerSession {
			c.evictOldest(s)
		}
		for c.total >= c.lim.Total {
			c.evictSession()
		}
		s.reqs[k] = pending{
			at: now, method: strings.Clone(m.Method), tool: strings.Clone(m.Tool),
			uri: strings.Clone(m.URI), prompt: strings.Clone(m.Prompt),
		}
		s.order = append(s.order, k)
		c.total++
	}
	if len(s.order) > 2*c.lim.PerSession {
		s.compact()
	}
}

// take returns and forgets the request of session sid with the given id, nil if unknown.
func (c *correlations) take(sid string, id json.RawMessage) *mcp.Message {
	now := c.now()
	c.mu.Lock()
	defer c.mu.Unlock()
	s := c.sessions[sid]
	if s == nil {
		return nil
	}
	c.expire(s, now)
	p, ok := s.reqs[string(id)]
	if !ok {
		return nil
	}
	delete(s.reqs, string(id))
	c.total--
	return p.request(append(json.RawMessage(nil), id...))
}

// toolsLists returns the ids of session sid's pending tools/list requests, and whether the
// table knows every request of the session (it saw the session and evicted nothing).
func (c *correlations) toolsLists(sid string) ([]json.RawMessage, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	s := c.sessions[sid]
	if s == nil {
		return nil, false
	}
	var ids []json.RawMessage
	for k, p := range s.reqs {
		if !p.reused && p.method == "tools/list" {
			ids = append(ids, json.RawMessage(k))
		}
	}
	return ids, !s.lossy
}

// len is the number of pending requests kept.
func (c *correlations) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.total
}

func (c *correlations) expire(s *corrSession, now time.Time) {
	for len(s.order) > 0 {
		k := s.order[0]
		p, ok := s.reqs[k]
		if ok && now.Sub(p.at) <= c.lim.TTL {
			return
		}
		s.order = s.order[1:]
		if ok {
			delete(s.reqs, k)
			c.total--
			s.lossy = true
		}
	}
}

// expireSessions drops the least recently used sessions idle longer than the TTL.
func (c *correlations) expireSessions(now time.Time) {
	for e := c.lru.Back(); e != nil; e = c.lru.Back() {
		s, _ := e.Value.(*corrSession)
		if now.Sub(s.seen) <= c.lim.TTL {
			return
		}
		c.drop(s)
	}
}

func (c *correlations) evictOldest(s *corrSession) {
	for len(s.order) > 0 {
		k := s.order[0]
		s.order = s.order[1:]
		if _, ok := s.reqs[k]; ok {
			delete(s.reqs, k)
			c.total--
			s.lossy = true
			return
		}
	}
	// order lost track (reused ids): drop everything rather than loop.
	c.total -= len(s.reqs)
	s.reqs = map[string]pending{}
	s.lossy = true
}

func (c *correlations) evictSession() {
	e := c.lru.Back()
	if e == nil {
		c.total = 0
		return
	}
	s, _ := e.Value.(*corrSession)
	c.drop(s)
}

func (c *correlations) drop(s *corrSession) {
	c.lru.Remove(s.el)
	delete(c.sessions, s.id)
	c.total -= len(s.reqs)
}

func (s *corrSession) compact() {
	kept := make([]string, 0, len(s.reqs))
	seen := make(map[string]bool, len(s.reqs))
	for _, k := range s.order {
		if _, ok := s.reqs[k]; ok && !seen[k] {
			seen[k] = true
			kept = append(kept, k)
		}
	}
	s.order = kept
}
