//go:build tools

// Package tools pins etcd for certwatch's integration tests.
package tools

import _ "go.etcd.io/etcd/server/v3"
