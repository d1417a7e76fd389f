// Command gen writes certwatch's Grafana dashboards into the dashboards
// folder: go run ./dashboards/gen
package main

import (
	"log"
	"os"
	"path/filepath"

	"github.com/certwatch/certwatch/dashboards"
)

func main() {
	files, err := dashboards.Files()
	if err != nil {
		log.Fatal(err)
	}
	for name, data := range files {
		if err := os.WriteFile(filepath.Join("dashboards", name), data, 0o644); err != nil {
			log.Fatal(err)
		}
	}
}
