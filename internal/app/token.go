package app

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/mcpguard/mcpguard/internal/config"
	"github.com/mcpguard/mcpguard/internal/devissuer"
)

// listFlag collects a flag that may be repeated and may hold several values separated by
// commas or spaces (--groups dba,ops --groups oncall).
type listFlag []string

func (l *listFlag) String() string { return strings.Join(*l, ",") }

func (l *listFlag) Set(s string) error {
	*l = append(*l, strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == ' ' })...)
	return nil
}

func token(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("token", flag.ContinueOnError)
	configPath := fs.String("config", "", "config file (default: the embedded development config)")
	sub := fs.String("sub", "agent-1", "subject: the non-human identity the token is for")
	clientID := fs.String("client-id", "", "client id (cid claim); default: the subject")
	ttl := fs.Duration("ttl", time.Hour, "lifetime of the token")
	var scopes, groups, aud listFlag
	fs.Var(&scopes, "scope", `scopes, space or comma separated (default "mcp:tools")`)
	fs.Var(&groups, "groups", "groups, comma separated; repeatable")
	fs.Var(&aud, "aud", "audience (default: the dev issuer's audience)")
	err := parseFlags(fs, args, stderr, "token [--sub ID] [--scope S] [--groups G] [--ttl 1h] [--aud URL] [--config FILE]")
	if err != nil {
		return helpOK(err)
	}
	cfg, err := config.Load(*configPath)
	if err != nil {
		return fmt.Errorf("load config: %w", err)
	}
	if !cfg.Auth.DevIssuer.Enabled {
		return errors.New("the development issuer is not enabled in this config (auth.dev_issuer.enabled); use your IdP to get tokens")
	}
	iss, err := devissuer.Open(cfg.Auth.DevIssuer, cfg.DevKeyFile())
	if err != nil {
		return fmt.Errorf("open development issuer: %w", err)
	}
	if len(scopes) == 0 {
		scopes = listFlag{"mcp:tools"}
	}
	if *clientID == "" {
		*clientID = *sub
	}
	tok, err := iss.Mint(devissuer.MintOptions{
		Subject:  *sub,
		ClientID: *clientID,
		Audience: aud,
		Scopes:   scopes,
		Groups:   groups,
		TTL:      *ttl,
	})
	if err != nil {
		return fmt.Errorf("mint token: %w", err)
	}
	fmt.Fprintln(stdout, tok)
	return nil
}
