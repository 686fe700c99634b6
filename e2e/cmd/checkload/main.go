// Command checkload drives ext_authz Check over real gRPC at a fixed concurrency and a target
// rate (open loop: latency is measured from each request's scheduled start, so a slow server
// cannot hide its queueing), then reports the achieved rate, errors and latency percentiles.
//
//	checkload -addr 127.0.0.1:9001 -token-file tok.jwt -c 32 -rps 5000 -d 20s
//	checkload -self -rps 5000 -d 10s   # in-process test issuer and authz server on loopback
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"slices"
	"strings"
	"sync"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/mcpguard/mcpguard/authz"
	"github.com/mcpguard/mcpguard/authz/authztest"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	err := run(ctx, os.Args[1:], os.Stdout)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "checkload:", err)
		os.Exit(1)
	}
}

type opts struct {
	addr, token, tokenFile, audience string
	conc, rps                        int
	dur                              time.Duration
	self                             bool
}

func run(ctx context.Context, args []string, out io.Writer) error {
	var o opts
	fs := flag.NewFlagSet("checkload", flag.ContinueOnError)
	fs.StringVar(&o.addr, "addr", "127.0.0.1:9001", "ext_authz gRPC address")
	fs.StringVar(&o.token, "token", "", "bearer token")
	fs.StringVar(&o.tokenFile, "token-file", "", "file holding the bearer token")
	fs.StringVar(&o.audience, "audience", "", "context_extensions audience sent with each check (optional)")
	fs.IntVar(&o.conc, "c", 32, "concurrent workers")
	fs.IntVar(&o.rps, "rps", 5000, "target requests per second")
	fs.DurationVar(&o.dur, "d", 20*time.Second, "duration")
	fs.BoolVar(&o.self, "self", false, "start an in-process test issuer and authz server on loopback")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if o.conc <= 0 || o.rps <= 0 || o.dur <= 0 || o.dur > 10*time.Minute {
		return errors.New("-c and -rps must be positive, -d in (0, 10m]")
	}
	if o.self {
		stopSelf, err := startSelf(ctx, &o)
		if err != nil {
			return err
		}
		defer stopSelf()
	}
	if o.tokenFile != "" {
		b, err := os.ReadFile(o.tokenFile)
		if err != nil {
			return fmt.Errorf("read token: %w", err)
		}
		o.token = strings.TrimSpace(string(b))
	}
	if o.token == "" {
		return errors.New("a token is required: -token, -token-file or -self")
	}
	conn, err := grpc.NewClient(o.addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return fmt.Errorf("dial %s: %w", o.addr, err)
	}
	defer conn.Close()
	res := drive(ctx, authv3.NewAuthorizationClient(conn), o)
	res.print(out, o)
	return nil
}

// startSelf runs a test issuer, a verifier and the authz server on 127.0.0.1 and mints a token.
func startSelf(ctx context.Context, o *opts) (func(), error) {
	iss, err := authztest.New()
	if err != nil {
		return nil, fmt.Errorf("start issuer: %w", err)
	}
	const aud = "https://mcp.example.com/mcp"
	cfg := authz.DefaultConfig()
	cfg.Issuers = []authz.IssuerConfig{{Issuer: iss.URL}}
	cfg.Audience = aud
	cfg.RequiredScopes = []string{"mcp:tools"}
	log := slog.New(slog.DiscardHandler)
	v, err := authz.NewVerifier(ctx, cfg, log, nil)
	if err != nil {
		iss.Close()
		return nil, fmt.Errorf("verifier: %w", err)
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		v.Close()
		iss.Close()
		return nil, fmt.Errorf("listen: %w", err)
	}
	g := grpc.NewServer()
	authz.NewServer(v, cfg, log, nil).Register(g)
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = g.Serve(lis)
	}()
	o.addr = lis.Addr().String()
	o.token = iss.Mint(iss.Claims(aud, "mcp:tools"))
	return func() {
		g.Stop()
		<-done
		v.Close()
		iss.Close()
	}, nil
}

type result struct {
	sent, ok, denied, errs int
	elapsed                time.Duration
	lat                    []time.Duration
}

// drive schedules requests at o.rps for o.dur; o.conc workers execute them. A request's latency
// counts from its scheduled time, so time spent waiting for a free worker is included.
func drive(ctx context.Context, client authv3.AuthorizationClient, o opts) result {
	ctx, cancel := context.WithTimeout(ctx, o.dur)
	defer cancel()
	req := &authv3.CheckRequest{Attributes: &authv3.AttributeContext{
		Request: &authv3.AttributeContext_Request{Http: &authv3.AttributeContext_HttpRequest{
			Id: "checkload", Method: "POST", Path: "/mcp", Host: "mcp.example.com", Scheme: "https",
			Headers: map[string]string{
				":method": "POST", ":path": "/mcp", ":authority": "mcp.example.com",
				"authorization": "Bearer " + o.token, "content-type": "application/json",
			},
		}},
	}}
	if o.audience != "" {
		req.Attributes.ContextExtensions = map[string]string{"audience": o.audience}
	}
	slots := make(chan time.Time, o.conc*4)
	var (
		mu  sync.Mutex
		res result
		wg  sync.WaitGroup
	)
	start := time.Now()
	for range o.conc {
		wg.Go(func() {
			var lat []time.Duration
			var ok, denied, errs int
			for due := range slots {
				cctx, ccancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
				resp, err := client.Check(cctx, req)
				ccancel()
				lat = append(lat, time.Since(due))
				switch {
				case err != nil:
					errs++
				case resp.GetStatus().GetCode() == int32(codes.OK):
					ok++
				default:
					denied++
				}
			}
			mu.Lock()
			res.lat = append(res.lat, lat...)
			res.ok, res.denied, res.errs = res.ok+ok, res.denied+denied, res.errs+errs
			mu.Unlock()
		})
	}
	interval := time.Second / time.Duration(o.rps)
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
schedule:
	for {
		due := start.Add(time.Duration(res.sent) * interval)
		for !due.After(time.Now()) {
			select {
			case slots <- due:
				res.sent++
				due = start.Add(time.Duration(res.sent) * interval)
			case <-ctx.Done():
				break schedule
			}
		}
		select {
		case <-tick.C:
		case <-ctx.Done():
			break schedule
		}
	}
	close(slots)
	wg.Wait()
	res.elapsed = time.Since(start)
	slices.Sort(res.lat)
	return res
}

func (r result) pct(p float64) time.Duration {
	if len(r.lat) == 0 {
		return 0
	}
	i := int(p/100*float64(len(r.lat))+0.5) - 1
	return r.lat[min(max(i, 0), len(r.lat)-1)]
}

func (r result) print(w io.Writer, o opts) {
	done := len(r.lat)
	fmt.Fprintf(w, "target %d req/s, %d workers, %s\n", o.rps, o.conc, o.dur)
	fmt.Fprintf(w, "completed %d in %s: %.0f req/s (allowed %d, denied %d, errors %d)\n",
		done, r.elapsed.Round(time.Millisecond), float64(done)/r.elapsed.Seconds(), r.ok, r.denied, r.errs)
	fmt.Fprintf(w, "latency p50 %s  p90 %s  p99 %s  p99.9 %s  max %s\n",
		r.pct(50), r.pct(90), r.pct(99), r.pct(99.9), r.pct(100))
}
