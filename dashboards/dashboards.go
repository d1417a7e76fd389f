// Package dashboards generates certwatch's Grafana dashboards. The JSON files
// beside this one are its output, committed so users can import or provision
// them; `go run ./dashboards/gen` rewrites them and a test fails when they
// drift from this code.
//
// Conventions (those of the monitoring mixins): one datasource variable used
// by every panel and query, job/instance (and source/target) variables, a
// unit on every panel, a stable uid, the "certwatch / " title prefix and the
// "certwatch" tag, not editable.
package dashboards

import (
	"encoding/json"
	"fmt"
	"sort"
	"strings"
)

// Files maps each dashboard's file name to its JSON.
func Files() (map[string][]byte, error) {
	out := map[string][]byte{}
	for name, d := range map[string]dashboard{
		"certwatch-overview.json": overview(),
		"certwatch-target.json":   target(),
		"certwatch-exporter.json": exporter(),
	} {
		b, err := json.MarshalIndent(d.render(), "", "  ")
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		out[name] = append(b, '\n')
	}
	return out, nil
}

type obj = map[string]any

type dashboard struct {
	uid, title, description string
	variables               []obj
	panels                  []panel
	links                   []obj
}

type query struct {
	expr, legend string
	instant      bool
	table        bool
}

type panel struct {
	kind, title, description, unit string
	w, h                           int
	queries                        []query
	options                        obj
	overrides                      []obj
	transformations                []obj
	thresholds                     []obj // steps
	mappings                       []obj
	decimals                       *int
}

var datasource = obj{"type": "prometheus", "uid": "${datasource}"}

// sel is the selector every certwatch query carries.
const sel = `job=~"$job", instance=~"$instance"`

func (d dashboard) render() obj {
	var panels []obj
	x, y, rowH := 0, 0, 0
	for i, p := range d.panels {
		if p.kind == "row" {
			if x > 0 {
				x, y = 0, y+rowH
			}
			panels = append(panels, obj{"type": "row", "title": p.title, "id": i + 1, "collapsed": false,
				"gridPos": obj{"x": 0, "y": y, "w": 24, "h": 1}, "panels": []obj{}})
			y++
			rowH = 0
			continue
		}
		if x+p.w > 24 {
			x, y, rowH = 0, y+rowH, 0
		}
		panels = append(panels, p.render(i+1, x, y))
		x += p.w
		rowH = max(rowH, p.h)
	}
	return obj{
		"uid":                  d.uid,
		"title":                "certwatch / " + d.title,
		"description":          d.description,
		"tags":                 []string{"certwatch"},
		"editable":             false,
		"graphTooltip":         1,
		"schemaVersion":        39,
		"version":              1,
		"refresh":              "1m",
		"time":                 obj{"from": "now-24h", "to": "now"},
		"timezone":             "utc",
		"fiscalYearStartMonth": 0,
		"liveNow":              false,
		"annotations":          obj{"list": []obj{}},
		"links":                append([]obj{}, d.links...),
		"templating":           obj{"list": d.variables},
		"panels":               panels,
	}
}

func (p panel) render(id, x, y int) obj {
	var targets []obj
	for i, q := range p.queries {
		t := obj{
			"refId":        string(rune('A' + i)),
			"datasource":   datasource,
			"expr":         q.expr,
			"legendFormat": q.legend,
			"instant":      q.instant,
			"range":        !q.instant,
		}
		if q.table {
			t["format"] = "table"
		}
		targets = append(targets, t)
	}
	thresholds := p.thresholds
	if thresholds == nil {
		thresholds = []obj{{"color": "green", "value": nil}}
	}
	defaults := obj{
		"unit":       p.unit,
		"thresholds": obj{"mode": "absolute", "steps": thresholds},
		"color":      obj{"mode": "thresholds"},
		"mappings":   append([]obj{}, p.mappings...),
	}
	if p.decimals != nil {
		defaults["decimals"] = *p.decimals
	}
	if p.kind == "timeseries" {
		defaults["color"] = obj{"mode": "palette-classic"}
	}
	out := obj{
		"id":              id,
		"type":            p.kind,
		"title":           p.title,
		"description":     p.description,
		"datasource":      datasource,
		"gridPos":         obj{"x": x, "y": y, "w": p.w, "h": p.h},
		"targets":         targets,
		"fieldConfig":     obj{"defaults": defaults, "overrides": append([]obj{}, p.overrides...)},
		"options":         p.options,
		"transformations": append([]obj{}, p.transformations...),
	}
	if p.options == nil {
		out["options"] = obj{}
	}
	return out
}

func variable(name, label, query string, includeAll bool) obj {
	v := obj{
		"name":       name,
		"label":      label,
		"type":       "query",
		"datasource": datasource,
		"query":      obj{"query": query, "refId": "PrometheusVariableQueryEditor-VariableQuery"},
		"definition": query,
		"refresh":    2,
		"sort":       1,
		"multi":      includeAll,
		"includeAll": includeAll,
		"hide":       0,
	}
	if includeAll {
		v["allValue"] = ".+"
		v["current"] = obj{"selected": true, "text": []string{"All"}, "value": []string{"$__all"}}
	} else {
		v["current"] = obj{}
	}
	return v
}

func commonVariables() []obj {
	return []obj{
		{"name": "datasource", "label": "Data source", "type": "datasource", "query": "prometheus",
			"current": obj{}, "hide": 0, "refresh": 1, "regex": "", "includeAll": false, "multi": false},
		variable("job", "Job", `label_values(certwatch_build_info, job)`, true),
		variable("instance", "Instance", `label_values(certwatch_build_info{job=~"$job"}, instance)`, true),
	}
}

func stat(title, description, expr, unit string, w int, thresholds []obj) panel {
	return panel{kind: "stat", title: title, description: description, unit: unit, w: w, h: 4,
		queries: []query{{expr: expr, instant: true}}, thresholds: thresholds,
		options: obj{"reduceOptions": obj{"calcs": []string{"lastNotNull"}, "fields": "", "values": false},
			"colorMode": "background", "graphMode": "none", "textMode": "value", "justifyMode": "center"}}
}

func steps(pairs ...any) []obj {
	out := []obj{{"color": pairs[0], "value": nil}}
	for i := 1; i+1 < len(pairs); i += 2 {
		out = append(out, obj{"color": pairs[i+1], "value": pairs[i]})
	}
	return out
}

// hideColumns hides the table columns Prometheus adds that say nothing here.
func organize(rename map[string]string, order []string, hide ...string) obj {
	exclude := obj{"Time": true, "__name__": true, "job": true, "instance": true}
	for _, h := range hide {
		exclude[h] = true
	}
	index := obj{}
	for i, c := range order {
		index[c] = i
	}
	return obj{"id": "organize", "options": obj{"excludeByName": exclude, "renameByName": rename, "indexByName": index}}
}

func joined(parts ...string) string { return strings.Join(parts, "") }

// Query is one PromQL expression of a dashboard panel.
type Query struct {
	Dashboard, Panel, Expr string
}

// Queries lists every panel query of every dashboard, in a stable order.
func Queries() ([]Query, error) {
	files, err := Files()
	if err != nil {
		return nil, err
	}
	var out []Query
	for file, data := range files {
		var d struct {
			Panels []struct {
				Title   string `json:"title"`
				Targets []struct {
					Expr string `json:"expr"`
				} `json:"targets"`
			} `json:"panels"`
		}
		if err := json.Unmarshal(data, &d); err != nil {
			return nil, fmt.Errorf("%s: %w", file, err)
		}
		for _, p := range d.Panels {
			for _, t := range p.Targets {
				out = append(out, Query{Dashboard: file, Panel: p.Title, Expr: t.Expr})
			}
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Dashboard != out[j].Dashboard {
			return out[i].Dashboard < out[j].Dashboard
		}
		return out[i].Panel+out[i].Expr < out[j].Panel+out[j].Expr
	})
	return out, nil
}

// ExpandVariables replaces the dashboards' template variables by values that
// select everything, as Grafana does with "All".
func ExpandVariables(expr string) string {
	return strings.NewReplacer(`=~"$job"`, `=~".+"`, `=~"$instance"`, `=~".+"`, `=~"$source"`, `=~".+"`,
		`="$target"`, `=~".+"`).Replace(expr)
}
