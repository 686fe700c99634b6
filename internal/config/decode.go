package config

import "github.com/mcpguard/mcpguard/internal/yamlx"

// decodeYAML is the strict decoder every mcpguard file goes through ([yamlx.Decode]).
func decodeYAML(data []byte, v any) (map[string]int, error) { return yamlx.Decode(data, v) }
