package extproc

import (
	"errors"
	"time"
)

// Config sizes the buffers and bounds the holds of the ext_proc server.
type Config struct {
	// MaxRequestBytes caps a buffered MCP request body; larger bodies are refused with 413.
	MaxRequestBytes int `yaml:"max_request_bytes"`
	// MaxResponseBytes caps a JSON response body that is inspected as a whole; a larger
	// body is withheld and replaced by a JSON-RPC error.
	MaxResponseBytes int `yaml:"max_response_bytes"`
	// MaxEventBytes caps one server-sent event; a larger event ends the stream with an error.
	MaxEventBytes int `yaml:"max_event_bytes"`
	// BufferResponseBytes is the largest JSON response (by content-length) that Envoy
	// buffers; larger ones, and those without content-length, are switched to STREAMED
	// and accumulated here, so they neither hit Envoy's buffer limit nor travel as one
	// huge gRPC message. Keep it at or below Envoy's buffer limit.
	BufferResponseBytes int `yaml:"buffer_response_bytes"`
	// MaxHold is the longest override_message_timeout a stage may request; it must not
	// exceed Envoy's max_message_timeout, otherwise Envoy ignores the override.
	MaxHold time.Duration `yaml:"max_hold"`
}

// DefaultConfig returns the defaults: 4 MiB requests, 32 MiB JSON responses, 4 MiB events,
// JSON above 1 MiB streamed, holds up to 30 minutes (Envoy's max_message_timeout: 1800s).
func DefaultConfig() Config {
	return Config{
		MaxRequestBytes:     4 << 20,
		MaxResponseBytes:    32 << 20,
		MaxEventBytes:       4 << 20,
		BufferResponseBytes: 1 << 20,
		MaxHold:             30 * time.Minute,
	}
}

// Validate reports every problem of the configuration at once.
func (c Config) Validate() error {
	var errs []error
	if c.MaxRequestBytes <= 0 {
		errs = append(errs, errors.New("max_request_bytes: must be positive"))
	}
	if c.MaxResponseBytes <= 0 {
		errs = append(errs, errors.New("max_response_bytes: must be positive"))
	}
	if c.MaxEventBytes <= 0 {
		errs = append(errs, errors.New("max_event_bytes: must be positive"))
	}
	if c.BufferResponseBytes < 0 {
		errs = append(errs, errors.New("buffer_response_bytes: must not be negative"))
	}
	if c.BufferResponseBytes > c.MaxResponseBytes {
		errs = append(errs, errors.New("buffer_response_bytes: must not exceed max_response_bytes"))
	}
	if c.MaxHold < time.Millisecond || c.MaxHold > time.Hour {
		errs = append(errs, errors.New("max_hold: must be between 1ms and 1h (Envoy's range)"))
	}
	return errors.Join(errs...)
}

// RecvMsgSize is the gRPC receive limit the server needs: a whole buffered body
// (request or JSON response) plus headers and metadata. Pass it to grpc.MaxRecvMsgSize.
func (c Config) RecvMsgSize() int {
	return max(c.MaxRequestBytes, c.BufferResponseBytes) + 1<<20
}
