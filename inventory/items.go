package inventory

import (
	"net/url"
	"time"

	"github.com/certwatch/certwatch/collector"
)

// Items lists every place of snap as /api/v1/certificates lists them,
// unpaged and in its default order: the check command's report, in the
// API's schema.
func Items(snap *collector.Snapshot, now time.Time) List {
	q, err := ParseQuery(url.Values{})
	if err != nil { // no parameters cannot be wrong
		panic(err)
	}
	if snap == nil {
		return listOf(nil, &q, 0, nil, now)
	}
	ix := buildIndex(snap)
	rows := ix.match(&q, now)
	l := listOf(ix, &q, len(rows), rows, now)
	l.Page, l.PageSize = 1, len(rows)
	return l
}
