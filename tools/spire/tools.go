//go:build tools

// Package tools pins the SPIRE server and agent for certwatch's SPIFFE
// integration tests.
package tools

import (
	_ "github.com/spiffe/spire/cmd/spire-agent"
	_ "github.com/spiffe/spire/cmd/spire-server"
)
