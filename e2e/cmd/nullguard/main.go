// Command nullguard is the protocol floor of an ext_authz + ext_proc server: it speaks
// enough of mcpguard's command line for the e2e harness (`serve --config FILE` with
// grpc.listen and admin.listen, the "mcpguard started" line, /readyz, `token`) and answers
// every Check with OK and every ext_proc message with "continue", looking at nothing.
// Measured with the same load as mcpguard, its CPU per call is what gRPC, HTTP/2 and
// protobuf cost any server in mcpguard's place; mcpguard's own work is the rest.
//
//	go build -o bin/nullguard ./e2e/cmd/nullguard
//	go run ./e2e/cmd/soak -skip-soak -capacity 15s -capacity-classes allowed -bin bin/nullguard
//
// It enforces nothing: a measuring instrument, never a gateway.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	"google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc"
	"gopkg.in/yaml.v3"

	"github.com/mcpguard/mcpguard/extproc"
	"github.com/mcpguard/mcpguard/extproc/extproctest"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "nullguard:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	if len(args) == 0 {
		return errors.New("usage: nullguard serve|token --config FILE")
	}
	fs := flag.NewFlagSet(args[0], flag.ContinueOnError)
	config := fs.String("config", "", "mcpguard configuration (grpc.listen and admin.listen are read)")
	fs.String("sub", "", "ignored")
	fs.String("scope", "", "ignored")
	fs.String("groups", "", "ignored")
	fs.String("aud", "", "ignored")
	fs.String("ttl", "", "ignored")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	switch args[0] {
	case "token":
		// Nothing verifies it: any three-part token will do.
		fmt.Println("e30.e30.nullguard")
		return nil
	case "serve":
		return serve(*config)
	}
	return fmt.Errorf("unknown command %q", args[0])
}

func serve(path string) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	var cfg struct {
		GRPC  struct{ Listen string } `yaml:"grpc"`
		Admin struct{ Listen string } `yaml:"admin"`
	}
	if err := yaml.Unmarshal(data, &cfg); err != nil {
		return fmt.Errorf("config: %w", err)
	}
	gl, err := net.Listen("tcp", cfg.GRPC.Listen)
	if err != nil {
		return err
	}
	al, err := net.Listen("tcp", cfg.Admin.Listen)
	if err != nil {
		return err
	}
	gs := grpc.NewServer(grpc.ForceServerCodecV2(extproc.NewCodec()), grpc.NumStreamWorkers(64), grpc.MaxRecvMsgSize(64<<20))
	authv3.RegisterAuthorizationServer(gs, allow{})
	extprocv3.RegisterExternalProcessorServer(gs, extproctest.NullProcessor{})
	mux := http.NewServeMux()
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintln(w, "ready") })
	hs := &http.Server{Handler: mux}
	go func() { _ = gs.Serve(gl) }()
	go func() { _ = hs.Serve(al) }()
	line, _ := json.Marshal(map[string]string{"level": "INFO", "msg": "mcpguard started", "grpc": gl.Addr().String(), "admin": al.Addr().String()})
	fmt.Fprintln(os.Stderr, string(line))

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	<-ctx.Done()
	gs.Stop()
	return hs.Close()
}

type allow struct {
	authv3.UnimplementedAuthorizationServer
}

func (allow) Check(context.Context, *authv3.CheckRequest) (*authv3.CheckResponse, error) {
	return &authv3.CheckResponse{Status: &status.Status{}}, nil
}
