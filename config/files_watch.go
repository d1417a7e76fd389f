package config

import (
	"time"

	"go.yaml.in/yaml/v3"
)

// The values of global.files_watch: how the files source learns that a file
// changed between scrapes.
const (
	// FilesWatchAuto watches with inotify where the kernel reports changes
	// (Linux, local filesystems) and polls elsewhere (network filesystems,
	// other systems, watches exhausted).
	FilesWatchAuto = "auto"
	// FilesWatchInotify watches with inotify even on filesystems that may
	// not report changes made by other machines (NFS, CIFS, FUSE): for a
	// mount only this machine writes to.
	FilesWatchInotify = "inotify"
	// FilesWatchPoll stats every file on every scrape.
	FilesWatchPoll = "poll"
)

// DefaultFilesRecheckInterval is how often, while watching, every file is
// stat'ed and every directory walked anyway, to catch what no event told.
const DefaultFilesRecheckInterval = 10 * time.Minute

// MinFilesRecheckInterval keeps the re-check from becoming a poll in disguise
// by mistake (30s would stat every file every other scrape).
const MinFilesRecheckInterval = time.Minute

// validateFilesWatch checks global.files_watch and
// global.files_recheck_interval as the file sets them (before defaults).
func (g *Global) validateFilesWatch(root *yaml.Node, fail func([]any, string, ...any)) {
	switch g.FilesWatch {
	case "", FilesWatchAuto, FilesWatchInotify, FilesWatchPoll:
	default:
		fail([]any{"global", "files_watch"}, "want %s, %s or %s, got %q", FilesWatchAuto, FilesWatchInotify, FilesWatchPoll, g.FilesWatch)
	}
	at := []any{"global", "files_recheck_interval"}
	if findNode(root, at) != nil && time.Duration(g.FilesRecheckInterval) < MinFilesRecheckInterval {
		fail(at, "must be at least %s, got %s", MinFilesRecheckInterval, time.Duration(g.FilesRecheckInterval))
	}
}

func (g *Global) applyFilesWatchDefaults() {
	if g.FilesWatch == "" {
		g.FilesWatch = FilesWatchAuto
	}
	if g.FilesRecheckInterval == 0 {
		g.FilesRecheckInterval = Duration(DefaultFilesRecheckInterval)
	}
}
