package hostile

import (
	"fmt"
	"slices"
)

// Slack is how far the last window's figures may sit above those of the
// window after warm-up and still count as flat.
type Slack struct {
	Goroutines int
	OpenFDs    int
	RSS        float64 // bytes
}

// DefaultSlack allows for what is in flight at the moment a scrape reads its
// own figures (a hostile probe or two more or fewer, each a goroutine and a
// socket) and for the heap's own breathing; a leak of one goroutine or one
// descriptor per scrape, or of 10 MiB, over the run trips it.
var DefaultSlack = Slack{Goroutines: 10, OpenFDs: 5, RSS: 10 << 20}

// Median is the median of each figure over a window.
func Median(window []Figures) Figures {
	if len(window) == 0 {
		return Figures{}
	}
	g, fd, rss := make([]int, len(window)), make([]int, len(window)), make([]float64, len(window))
	for i, f := range window {
		g[i], fd[i], rss[i] = f.Goroutines, f.OpenFDs, f.RSS
	}
	slices.Sort(g)
	slices.Sort(fd)
	slices.Sort(rss)
	m := len(window) / 2
	return Figures{Goroutines: g[m], OpenFDs: fd[m], RSS: rss[m]}
}

// Flat compares the medians of two windows and says what grew beyond the
// slack; nothing when the figures are flat.
func Flat(early, late []Figures, slack Slack) []string {
	a, b := Median(early), Median(late)
	var out []string
	if b.Goroutines > a.Goroutines+slack.Goroutines {
		out = append(out, fmt.Sprintf("goroutines grew from %d to %d (slack %d)", a.Goroutines, b.Goroutines, slack.Goroutines))
	}
	if b.OpenFDs > a.OpenFDs+slack.OpenFDs {
		out = append(out, fmt.Sprintf("open fds grew from %d to %d (slack %d)", a.OpenFDs, b.OpenFDs, slack.OpenFDs))
	}
	if b.RSS > a.RSS+slack.RSS {
		out = append(out, fmt.Sprintf("resident memory grew from %.1f to %.1f MiB (slack %.0f MiB)", a.RSS/(1<<20), b.RSS/(1<<20), slack.RSS/(1<<20)))
	}
	return out
}
