package config

import (
	"strings"
	"testing"
	"time"
)

func TestFilesWatch(t *testing.T) {
	cases := []struct {
		name        string
		yaml        string
		wantMode    string
		wantRecheck time.Duration
		wantErr     string // "" when valid
	}{
		{name: "defaults", yaml: "files: []\n", wantMode: FilesWatchAuto, wantRecheck: DefaultFilesRecheckInterval},
		{name: "poll", yaml: "global:\n  files_watch: poll\n", wantMode: FilesWatchPoll, wantRecheck: DefaultFilesRecheckInterval},
		{name: "inotify and an interval", yaml: "global:\n  files_watch: inotify\n  files_recheck_interval: 1h\n",
			wantMode: FilesWatchInotify, wantRecheck: time.Hour},
		{name: "unknown mode", yaml: "global:\n  files_watch: fanotify\n",
			wantErr: `line 2: global.files_watch: want auto, inotify or poll, got "fanotify"`},
		{name: "interval too short", yaml: "global:\n  probe_concurrency: 4\n  files_recheck_interval: 30s\n",
			wantErr: "line 3: global.files_recheck_interval: must be at least 1m0s, got 30s"},
		{name: "interval zero", yaml: "global:\n  files_recheck_interval: 0s\n",
			wantErr: "line 2: global.files_recheck_interval: must be at least 1m0s, got 0s"},
		{name: "interval not a duration", yaml: "global:\n  files_recheck_interval: often\n",
			wantErr: "line 2: global.files_recheck_interval: invalid duration"},
		{name: "mode not a string", yaml: "global:\n  files_watch: [poll]\n", wantErr: "line 2: global.files_watch: want"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := Parse([]byte(tc.yaml), t.TempDir())
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("got error %v, want one containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if cfg.Global.FilesWatch != tc.wantMode || time.Duration(cfg.Global.FilesRecheckInterval) != tc.wantRecheck {
				t.Errorf("files_watch %q, files_recheck_interval %s; want %q, %s", cfg.Global.FilesWatch,
					time.Duration(cfg.Global.FilesRecheckInterval), tc.wantMode, tc.wantRecheck)
			}
		})
	}
}
