// Package shard splits certwatch's configured targets between replicas:
// with --shard.total=N, replica --shard.index=i watches only the targets
// whose stable hash falls to it, so N replicas cover every target exactly
// once.
package shard

import (
	"fmt"
	"hash/fnv"
)

// Shard is one replica's share. The zero value owns everything.
type Shard struct {
	Index, Total int
}

// Validate checks the flags.
func (s Shard) Validate() error {
	if s.Total < 0 || s.Index < 0 || (s.Total > 0 && s.Index >= s.Total) || (s.Total == 0 && s.Index != 0) {
		return fmt.Errorf("shard index %d is not within 0..total-1 (total %d)", s.Index, s.Total)
	}
	return nil
}

// Owns reports whether the place named by key (source kind and target)
// belongs to this shard. The hash is FNV-1a: stable across versions,
// platforms and restarts.
func (s Shard) Owns(key string) bool {
	if s.Total <= 1 {
		return true
	}
	h := fnv.New64a()
	_, _ = h.Write([]byte(key))
	return h.Sum64()%uint64(s.Total) == uint64(s.Index)
}
