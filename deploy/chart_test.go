// Package deploy holds certwatch's deployment files: the plain RBAC manifests
// in rbac/, the container image's default configuration in container/, and
// (tested here) the Helm chart in ../charts/certwatch.
//
// The chart tests run the real helm (v3.22.0, on $PATH or built once into
// ${CERTWATCH_TOOLS:-~/.cache/certwatch/tools}/helm-v3.22.0/) over every
// values file in the chart's ci/ folder: lint, render, check what was
// rendered, have a real kube-apiserver (internal/kubetest) validate every
// object with a server-side dry run, and finally run the built certwatch
// binary under the ServiceAccount, RBAC and configuration the chart renders.
package deploy

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/certwatch/certwatch/config"
	"github.com/certwatch/certwatch/config/probeallow"
	"github.com/certwatch/certwatch/internal/kubetest"
	"github.com/certwatch/certwatch/internal/testpki"
)

const (
	chartDir    = "../charts/certwatch"
	helmVersion = "v3.22.0"
	// releaseNamespace is where every test installs the chart.
	releaseNamespace = "monitoring"
	imageRepository  = "ghcr.io/certwatch/certwatch"
)

// ---------------------------------------------------------------------------
// Tools: helm and the certwatch binary.

var (
	helmOnce sync.Once
	helmPath string
	helmErr  error

	binOnce sync.Once
	binPath string
	binErr  error
	binDir  string
)

func TestMain(m *testing.M) {
	code := m.Run()
	if binDir != "" {
		os.RemoveAll(binDir)
	}
	os.Exit(code)
}

// toolsDir is the folder scripts/test.sh builds pinned tools into.
func toolsDir() string {
	if d := os.Getenv("CERTWATCH_TOOLS"); d != "" {
		return d
	}
	cache := os.Getenv("XDG_CACHE_HOME")
	if cache == "" {
		home, _ := os.UserHomeDir()
		cache = filepath.Join(home, ".cache")
	}
	return filepath.Join(cache, "certwatch", "tools")
}

// helm returns the helm binary: on $PATH, or in the versioned tools folder.
func helm(t *testing.T) string {
	t.Helper()
	helmOnce.Do(func() {
		if p, err := exec.LookPath("helm"); err == nil {
			helmPath = p
			return
		}
		dir := filepath.Join(toolsDir(), "helm-"+helmVersion)
		p := filepath.Join(dir, "helm")
		if st, err := os.Stat(p); err == nil && st.Mode()&0o111 != 0 {
			helmPath = p
			return
		}
		helmErr = fmt.Errorf("helm not found on $PATH nor in %s: run ./scripts/test.sh, or\n  GOFLAGS= GOBIN=%s go install helm.sh/helm/v3/cmd/helm@%s", dir, dir, helmVersion)
	})
	if helmErr != nil {
		t.Fatal(helmErr)
	}
	return helmPath
}

// helmCommand runs helm with its cache, configuration and data folders in
// a temporary folder, so tests neither read nor change the user's.
func helmCommand(t *testing.T, args ...string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(helm(t), args...)
	home := t.TempDir()
	cmd.Env = append(os.Environ(),
		"HELM_CACHE_HOME="+filepath.Join(home, "cache"),
		"HELM_CONFIG_HOME="+filepath.Join(home, "config"),
		"HELM_DATA_HOME="+filepath.Join(home, "data"))
	return cmd
}

// certwatchBinary builds the exporter once for the whole package.
func certwatchBinary(t *testing.T) string {
	t.Helper()
	binOnce.Do(func() {
		binDir, binErr = os.MkdirTemp("", "certwatch-deploy-test-")
		if binErr != nil {
			return
		}
		binPath = filepath.Join(binDir, "certwatch")
		out, err := exec.Command("go", "build", "-o", binPath, "github.com/certwatch/certwatch").CombinedOutput()
		if err != nil {
			binErr = fmt.Errorf("building certwatch: %v\n%s", err, out)
		}
	})
	if binErr != nil {
		t.Fatal(binErr)
	}
	return binPath
}

// ---------------------------------------------------------------------------
// Rendering.

// object is one rendered Kubernetes object.
type object map[string]any

func (o object) kind() string       { s, _ := o["kind"].(string); return s }
func (o object) apiVersion() string { s, _ := o["apiVersion"].(string); return s }
func (o object) name() string       { return str(o, "metadata", "name") }
func (o object) namespace() string  { return str(o, "metadata", "namespace") }
func (o object) String() string     { return o.kind() + " " + o.namespace() + "/" + o.name() }

// get walks maps (string keys) and lists (int keys).
func get(v any, path ...any) any {
	for _, p := range path {
		switch k := p.(type) {
		case string:
			m, ok := v.(map[string]any)
			if !ok {
				if om, ok2 := v.(object); ok2 {
					m = om
				} else {
					return nil
				}
			}
			v = m[k]
		case int:
			l, ok := v.([]any)
			if !ok || k >= len(l) {
				return nil
			}
			v = l[k]
		}
	}
	return v
}

func str(v any, path ...any) string { s, _ := get(v, path...).(string); return s }

func list(v any, path ...any) []any { l, _ := get(v, path...).([]any); return l }

func stringList(v any, path ...any) []string {
	var out []string
	for _, x := range list(v, path...) {
		s, _ := x.(string)
		out = append(out, s)
	}
	return out
}

// helmTemplate renders the chart as release name into releaseNamespace with
// the given extra arguments (-f FILE, --set K=V) and returns the objects, or
// helm's error output.
func helmTemplate(t *testing.T, release string, args ...string) ([]object, error) {
	t.Helper()
	cmdArgs := append([]string{"template", release, chartDir, "--namespace", releaseNamespace,
		// The test cluster's version; a go-installed helm otherwise assumes v1.20.
		"--kube-version", strings.TrimPrefix(kubetest.KubeVersion, "v")}, args...)
	cmd := helmCommand(t, cmdArgs...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("helm %s: %v\n%s", strings.Join(cmdArgs, " "), err, stderr.String())
	}
	dec := yaml.NewDecoder(&stdout)
	var objs []object
	for {
		var o map[string]any
		err := dec.Decode(&o)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("helm template output is not YAML: %v\n%s", err, stdout.String())
		}
		if o != nil {
			objs = append(objs, object(o))
		}
	}
	return objs, nil
}

func mustRender(t *testing.T, release string, args ...string) []object {
	t.Helper()
	objs, err := helmTemplate(t, release, args...)
	if err != nil {
		t.Fatal(err)
	}
	return objs
}

func ofKind(objs []object, kinds ...string) []object {
	var out []object
	for _, o := range objs {
		if slices.Contains(kinds, o.kind()) {
			out = append(out, o)
		}
	}
	return out
}

func one(t *testing.T, objs []object, kind, name string) object {
	t.Helper()
	var found []object
	for _, o := range ofKind(objs, kind) {
		if name == "" || o.name() == name {
			found = append(found, o)
		}
	}
	if len(found) != 1 {
		t.Fatalf("want one %s %q, rendered %d", kind, name, len(found))
	}
	return found[0]
}

// ciValues lists the chart's ci/*.yaml values files.
func ciValues(t *testing.T) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(chartDir, "ci", "*.yaml"))
	if err != nil || len(files) < 4 {
		t.Fatalf("ci values files: %v %v", files, err)
	}
	return files
}

func ciName(file string) string { return strings.TrimSuffix(filepath.Base(file), "-values.yaml") }

// renderedConfig returns the certwatch configuration the ConfigMap mounted by
// a workload holds, parsed by certwatch's own parser.
func renderedConfig(t *testing.T, objs []object, workload object) (string, *config.Config) {
	t.Helper()
	var cmName string
	for _, v := range list(workload, "spec", "template", "spec", "volumes") {
		if str(v, "name") == "config" {
			cmName = str(v, "configMap", "name")
		}
	}
	cm := one(t, objs, "ConfigMap", cmName)
	text := str(cm, "data", "config.yml")
	cfg, err := config.Parse([]byte(text), "/etc/certwatch")
	if err != nil {
		t.Fatalf("%s: rendered configuration does not parse: %v\n%s", cm, err, text)
	}
	return text, cfg
}

// ---------------------------------------------------------------------------
// Static checks.

func TestChartAppVersionIsVERSION(t *testing.T) {
	version, err := os.ReadFile("../VERSION")
	if err != nil {
		t.Fatal(err)
	}
	var chart struct {
		AppVersion string `yaml:"appVersion"`
		Version    string `yaml:"version"`
	}
	data, err := os.ReadFile(filepath.Join(chartDir, "Chart.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(data, &chart); err != nil {
		t.Fatal(err)
	}
	if want := strings.TrimSpace(string(version)); chart.AppVersion != want {
		t.Errorf("Chart.yaml appVersion %q, VERSION says %q: keep them equal", chart.AppVersion, want)
	}
}

// TestChartFilesInSync fails when the chart's copies of the alert rules and
// dashboards drift from alerts/ and dashboards/, the sources of truth.
func TestChartFilesInSync(t *testing.T) {
	pairs := map[string]string{
		"../alerts/certwatch.rules.yml": filepath.Join(chartDir, "files/alerts/certwatch.rules.yml"),
	}
	sources, _ := filepath.Glob("../dashboards/*.json")
	if len(sources) != 3 {
		t.Errorf("want the 3 dashboards in dashboards/, found %v", sources)
	}
	for _, src := range sources {
		pairs[src] = filepath.Join(chartDir, "files/dashboards", filepath.Base(src))
	}
	for src, dst := range pairs {
		want, err := os.ReadFile(src)
		if err != nil {
			t.Fatal(err)
		}
		got, err := os.ReadFile(dst)
		if err != nil {
			t.Errorf("%s: %v: run make chart-sync", dst, err)
			continue
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s differs from %s: run make chart-sync", dst, src)
		}
	}
	copies, _ := filepath.Glob(filepath.Join(chartDir, "files/dashboards/*"))
	for _, c := range copies {
		if _, err := os.Stat(filepath.Join("../dashboards", filepath.Base(c))); err != nil {
			t.Errorf("%s has no source in dashboards/: delete it", c)
		}
	}
}

// TestChartSchemaMirrorsConfig keeps values.schema.json's description of the
// certwatch configuration (config and daemonset.config) key for key equal to
// the configuration's Go types, so the schema neither refuses a valid key nor
// lets a misspelt one through.
func TestChartSchemaMirrorsConfig(t *testing.T) {
	data, err := os.ReadFile(filepath.Join(chartDir, "values.schema.json"))
	if err != nil {
		t.Fatal(err)
	}
	var schema map[string]any
	if err := json.Unmarshal(data, &schema); err != nil {
		t.Fatal(err)
	}
	resolve := func(s any) any {
		if ref := str(s, "$ref"); ref != "" {
			name, ok := strings.CutPrefix(ref, "#/definitions/")
			if !ok {
				t.Fatalf("unexpected $ref %q", ref)
			}
			return get(schema, "definitions", name)
		}
		return s
	}
	for name, at := range map[string][]any{
		"config":           {"properties", "config"},
		"daemonset.config": {"properties", "daemonset", "properties", "config"},
	} {
		compareSchema(t, name, reflect.TypeFor[config.Config](), resolve(get(schema, at...)), resolve)
	}
}

func compareSchema(t *testing.T, path string, typ reflect.Type, s any, resolve func(any) any) {
	t.Helper()
	for typ.Kind() == reflect.Pointer {
		typ = typ.Elem()
	}
	switch typ.Kind() {
	case reflect.Struct:
		if get(s, "additionalProperties") != false {
			t.Errorf("schema %s: want additionalProperties false", path)
		}
		fields := yamlFields(typ)
		props, _ := get(s, "properties").(map[string]any)
		for name, ft := range fields {
			ps, ok := props[name]
			if !ok {
				t.Errorf("schema %s lacks %q (config has it)", path, name)
				continue
			}
			compareSchema(t, path+"."+name, ft, resolve(ps), resolve)
		}
		for name := range props {
			if _, ok := fields[name]; !ok {
				t.Errorf("schema %s has %q, which the config does not know", path, name)
			}
		}
	case reflect.Map:
		if typ.Elem().Kind() == reflect.Struct {
			compareSchema(t, path+".*", typ.Elem(), resolve(get(s, "additionalProperties")), resolve)
		}
	case reflect.Slice:
		if typ.Elem().Kind() == reflect.Struct {
			compareSchema(t, path+"[]", typ.Elem(), resolve(get(s, "items")), resolve)
		}
	}
}

// yamlFields maps a struct's YAML keys to their types, inline fields included.
func yamlFields(typ reflect.Type) map[string]reflect.Type {
	out := map[string]reflect.Type{}
	for i := range typ.NumField() {
		f := typ.Field(i)
		tag := f.Tag.Get("yaml")
		name, opts, _ := strings.Cut(tag, ",")
		if name == "-" || !f.IsExported() {
			continue
		}
		if strings.Contains(opts, "inline") {
			for k, v := range yamlFields(f.Type) {
				out[k] = v
			}
			continue
		}
		if name == "" {
			name = strings.ToLower(f.Name)
		}
		out[name] = f.Type
	}
	return out
}

func TestChartLint(t *testing.T) {
	for _, file := range append([]string{""}, ciValues(t)...) {
		name := "chart defaults"
		args := []string{"lint", "--strict", chartDir}
		if file != "" {
			name = ciName(file)
			args = append(args, "-f", file)
		}
		t.Run(name, func(t *testing.T) {
			out, err := helmCommand(t, args...).CombinedOutput()
			if err != nil {
				t.Fatalf("helm %s: %v\n%s", strings.Join(args, " "), err, out)
			}
		})
	}
}

// TestChartRender renders every ci values file and checks what any install
// must get right.
func TestChartRender(t *testing.T) {
	appVersion := strings.TrimSpace(string(must(os.ReadFile("../VERSION"))))
	for _, file := range ciValues(t) {
		t.Run(ciName(file), func(t *testing.T) {
			objs := mustRender(t, "cw", "-f", file)
			deployment := one(t, objs, "Deployment", "")
			workloads := ofKind(objs, "Deployment", "DaemonSet")
			for _, w := range workloads {
				checkWorkload(t, objs, w)
			}
			image := str(deployment, "spec", "template", "spec", "containers", 0, "image")
			if ciName(file) == "everything-on" {
				if image != imageRepository+":0.1.0-test" {
					t.Errorf("image %q: image.tag not used", image)
				}
			} else if image != imageRepository+":"+appVersion {
				t.Errorf("image %q, want the appVersion %s by default", image, appVersion)
			}
			if ciName(file) == "default" {
				if r := get(deployment, "spec", "template", "spec", "containers", 0, "resources"); r != nil {
					t.Errorf("default resources %v, want none", r)
				}
			}
			_, cfg := renderedConfig(t, objs, deployment)
			checkRBAC(t, objs, cfg, deployment)
			checkMonitoring(t, objs, cfg)
			if sa := str(deployment, "spec", "template", "spec", "serviceAccountName"); len(ofKind(objs, "ServiceAccount")) != 1 || one(t, objs, "ServiceAccount", "").name() != sa {
				t.Errorf("the Deployment runs as %q, which the chart does not render", sa)
			}
		})
	}
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

// checkWorkload checks a Deployment's or DaemonSet's pod: locked-down
// security context, probes on the right paths, a checksum of the very
// configuration it mounts, a configuration certwatch accepts.
func checkWorkload(t *testing.T, objs []object, w object) {
	t.Helper()
	pod := get(w, "spec", "template", "spec")
	psc := get(pod, "securityContext")
	containers := list(pod, "containers")
	if len(containers) != 1 {
		t.Fatalf("%s: %d containers", w, len(containers))
	}
	c := containers[0]
	csc := get(c, "securityContext")
	// A setting holds when the container says so, or the pod does and the
	// container does not override it.
	eff := func(key string) any {
		if v := get(csc, key); v != nil {
			return v
		}
		return get(psc, key)
	}
	for key, want := range map[string]any{"runAsNonRoot": true, "runAsUser": 65534, "runAsGroup": 65534} {
		if got := eff(key); fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("%s: securityContext %s = %v, want %v", w, key, got, want)
		}
	}
	if str(csc, "seccompProfile", "type") != "RuntimeDefault" && str(psc, "seccompProfile", "type") != "RuntimeDefault" {
		t.Errorf("%s: seccompProfile is not RuntimeDefault", w)
	}
	if get(csc, "readOnlyRootFilesystem") != true || get(csc, "allowPrivilegeEscalation") != false {
		t.Errorf("%s: container securityContext %v: want readOnlyRootFilesystem and no privilege escalation", w, csc)
	}
	if drop := stringList(csc, "capabilities", "drop"); !slices.Equal(drop, []string{"ALL"}) || get(csc, "capabilities", "add") != nil {
		t.Errorf("%s: capabilities %v, want drop [ALL] and no add", w, get(csc, "capabilities"))
	}
	if get(csc, "privileged") == true || get(pod, "hostNetwork") == true || get(pod, "hostPID") == true {
		t.Errorf("%s: privileged, host network or host PID", w)
	}
	if str(c, "ports", 0, "name") != "http" || fmt.Sprint(get(c, "ports", 0, "containerPort")) != "9860" {
		t.Errorf("%s: ports %v, want http 9860", w, get(c, "ports"))
	}
	for probe, path := range map[string]string{"livenessProbe": "/-/healthy", "readinessProbe": "/-/ready"} {
		if str(c, probe, "httpGet", "path") != path || str(c, probe, "httpGet", "port") != "http" {
			t.Errorf("%s: %s %v, want GET %s on port http", w, probe, get(c, probe), path)
		}
	}
	args := stringList(c, "args")
	if !slices.Contains(args, "--config.file=/etc/certwatch/config.yml") || !slices.Contains(args, "--web.listen-address=:9860") {
		t.Errorf("%s: args %v", w, args)
	}
	for _, m := range list(c, "volumeMounts") {
		if get(m, "readOnly") != true {
			t.Errorf("%s: volume %s is mounted writable", w, str(m, "name"))
		}
	}

	text, cfg := renderedConfig(t, objs, w)
	sum := sha256.Sum256([]byte(strings.TrimSuffix(text, "\n")))
	if got := str(w, "spec", "template", "metadata", "annotations", "checksum/config"); got != hex.EncodeToString(sum[:]) {
		t.Errorf("%s: checksum/config %q is not the checksum of the configuration it mounts", w, got)
	}
	checkConfigWithBinary(t, text)

	automount := get(pod, "automountServiceAccountToken")
	switch {
	case w.kind() == "DaemonSet":
		if automount != false {
			t.Errorf("%s: the node pods need no API token, automountServiceAccountToken = %v", w, automount)
		}
		if cfg.Kubernetes != nil {
			t.Errorf("%s: the node configuration has a Kubernetes source", w)
		}
		for _, v := range list(pod, "volumes") {
			if get(v, "hostPath") != nil && !slices.ContainsFunc(list(c, "volumeMounts"), func(m any) bool { return str(m, "name") == str(v, "name") }) {
				t.Errorf("%s: hostPath volume %s is not mounted", w, str(v, "name"))
			}
		}
	case automount != (cfg.Kubernetes != nil):
		t.Errorf("%s: automountServiceAccountToken = %v with a Kubernetes source: %v", w, automount, cfg.Kubernetes != nil)
	}
}

// checkConfigWithBinary runs certwatch --config.check on a rendered configuration.
func checkConfigWithBinary(t *testing.T, text string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "config.yml")
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(certwatchBinary(t), "--config.check", "--config.file="+path).CombinedOutput()
	if err != nil {
		t.Errorf("certwatch --config.check refuses the rendered configuration: %v\n%s\n%s", err, out, text)
	}
}

// rbacGrant is one (namespace, API group, resource) the chart grants.
type rbacGrant struct{ namespace, group, resource string }

// wantGrants derives the grants a configuration needs: list and watch on
// each kind it enables, Secrets and ConfigMaps per namespace when namespaced.
func wantGrants(cfg *config.Config, namespaced bool) map[rbacGrant]bool {
	want := map[rbacGrant]bool{}
	k := cfg.Kubernetes
	if k == nil {
		return want
	}
	core := func(resource string, namespaces []string) {
		if !namespaced {
			want[rbacGrant{"", "", resource}] = true
			return
		}
		for _, ns := range namespaces {
			want[rbacGrant{ns, "", resource}] = true
		}
	}
	if k.Secrets != nil {
		namespaces := k.Secrets.Namespaces
		if ps := k.Secrets.PasswordSecret; ps != nil && ps.Namespace != "" {
			namespaces = append(slices.Clone(namespaces), ps.Namespace) // its informer watches there
		}
		core("secrets", namespaces)
	}
	if k.ConfigMaps != nil {
		core("configmaps", k.ConfigMaps.Namespaces)
	}
	if k.Webhooks {
		want[rbacGrant{"", "admissionregistration.k8s.io", "validatingwebhookconfigurations"}] = true
		want[rbacGrant{"", "admissionregistration.k8s.io", "mutatingwebhookconfigurations"}] = true
	}
	if k.APIServices {
		want[rbacGrant{"", "apiregistration.k8s.io", "apiservices"}] = true
	}
	if k.CRDs {
		want[rbacGrant{"", "apiextensions.k8s.io", "customresourcedefinitions"}] = true
	}
	if k.CertManager.Mode() != config.CertManagerDisabled {
		for _, resource := range []string{"certificates", "certificaterequests", "issuers", "clusterissuers"} {
			want[rbacGrant{"", "cert-manager.io", resource}] = true
		}
	}
	if k.CSRs {
		want[rbacGrant{"", "certificates.k8s.io", "certificatesigningrequests"}] = true
	}
	if k.NamespaceSelectors() {
		want[rbacGrant{"", "", "namespaces"}] = true
	}
	return want
}

// checkRBAC checks that the rendered RBAC grants exactly list and watch on
// exactly the kinds the configuration enables, to the Deployment's account.
func checkRBAC(t *testing.T, objs []object, cfg *config.Config, deployment object) {
	t.Helper()
	sa := str(deployment, "spec", "template", "spec", "serviceAccountName")
	namespaced := len(ofKind(objs, "Role")) > 0
	got := map[rbacGrant]bool{}
	roles := map[string]object{}
	for _, r := range ofKind(objs, "Role", "ClusterRole") {
		roles[r.kind()+"/"+r.namespace()+"/"+r.name()] = r
		for _, rule := range list(r, "rules") {
			if verbs := stringList(rule, "verbs"); !slices.Equal(verbs, []string{"list", "watch"}) {
				t.Errorf("%s: verbs %v, want exactly [list watch]", r, verbs)
			}
			if get(rule, "resourceNames") != nil || get(rule, "nonResourceURLs") != nil {
				t.Errorf("%s: unexpected rule %v", r, rule)
			}
			for _, g := range stringList(rule, "apiGroups") {
				for _, res := range stringList(rule, "resources") {
					if g == "*" || res == "*" {
						t.Errorf("%s: wildcard in %v", r, rule)
					}
					got[rbacGrant{r.namespace(), g, res}] = true
				}
			}
		}
	}
	want := wantGrants(cfg, namespaced)
	if !reflect.DeepEqual(got, want) {
		t.Errorf("RBAC grants\n got %v\nwant %v", sortedGrants(got), sortedGrants(want))
	}
	bindings := ofKind(objs, "RoleBinding", "ClusterRoleBinding")
	if len(bindings) != len(roles) {
		t.Errorf("%d roles, %d bindings", len(roles), len(bindings))
	}
	for _, b := range bindings {
		roleKind := strings.TrimSuffix(b.kind(), "Binding")
		ns := b.namespace()
		if _, ok := roles[roleKind+"/"+ns+"/"+str(b, "roleRef", "name")]; !ok || str(b, "roleRef", "kind") != roleKind {
			t.Errorf("%s: roleRef %v names no rendered role", b, get(b, "roleRef"))
		}
		subjects := list(b, "subjects")
		if len(subjects) != 1 || str(subjects[0], "kind") != "ServiceAccount" || str(subjects[0], "name") != sa || str(subjects[0], "namespace") != releaseNamespace {
			t.Errorf("%s: subjects %v, want only ServiceAccount %s/%s", b, subjects, releaseNamespace, sa)
		}
	}
}

func sortedGrants(m map[rbacGrant]bool) []string {
	var out []string
	for g := range m {
		out = append(out, fmt.Sprintf("%s:%s/%s", g.namespace, g.group, g.resource))
	}
	sort.Strings(out)
	return out
}

// checkMonitoring validates the prometheus-operator and Grafana objects
// structurally (their CRDs are not installed in the test API server).
func checkMonitoring(t *testing.T, objs []object, cfg *config.Config) {
	t.Helper()
	services := ofKind(objs, "Service")
	for _, sm := range ofKind(objs, "ServiceMonitor") {
		if sm.apiVersion() != "monitoring.coreos.com/v1" {
			t.Errorf("%s: apiVersion %s", sm, sm.apiVersion())
		}
		// It must select exactly one rendered Service, in its namespace, by a port that exists.
		sel, _ := get(sm, "spec", "selector", "matchLabels").(map[string]any)
		var matched []object
		for _, svc := range services {
			labels, _ := get(svc, "metadata", "labels").(map[string]any)
			if len(sel) > 0 && subset(sel, labels) {
				matched = append(matched, svc)
			}
		}
		if len(matched) != 1 {
			t.Errorf("%s selects %d Services, want 1", sm, len(matched))
			continue
		}
		if ns := stringList(sm, "spec", "namespaceSelector", "matchNames"); !slices.Equal(ns, []string{matched[0].namespace()}) {
			t.Errorf("%s: namespaceSelector %v, Service in %s", sm, ns, matched[0].namespace())
		}
		ep := get(sm, "spec", "endpoints", 0)
		if str(ep, "port") != str(matched[0], "spec", "ports", 0, "name") || str(ep, "path") != "/metrics" {
			t.Errorf("%s: endpoint %v does not scrape /metrics on the Service's port", sm, ep)
		}
		job := ""
		for _, r := range list(ep, "relabelings") {
			if str(r, "targetLabel") == "job" {
				job = str(r, "replacement")
			}
		}
		if !strings.HasPrefix(job, "certwatch") {
			t.Errorf("%s: job label %q does not match the alerts' job=~\"certwatch.*\"", sm, job)
		}
	}
	for _, p := range ofKind(objs, "Probe") {
		svc := one(t, objs, "Service", strings.Split(str(p, "spec", "prober", "url"), ".")[0])
		wantURL := fmt.Sprintf("%s.%s.svc:%v", svc.name(), svc.namespace(), get(svc, "spec", "ports", 0, "port"))
		if str(p, "spec", "prober", "url") != wantURL || str(p, "spec", "prober", "path") != "/probe" {
			t.Errorf("%s: prober %v, want %s/probe", p, get(p, "spec", "prober"), wantURL)
		}
		// certwatch refuses /probe targets the module does not allow.
		module := str(p, "spec", "module")
		m, ok := cfg.Modules[module]
		if !ok {
			t.Errorf("%s: module %q is not configured", p, module)
			continue
		}
		for _, target := range stringList(p, "spec", "targets", "staticConfig", "static") {
			if !probeAllowed(cfg, module, m, target) {
				t.Errorf("%s: certwatch would refuse target %s with module %s (add it to probe_allow)", p, target, module)
			}
		}
	}
	for _, pr := range ofKind(objs, "PrometheusRule") {
		groups := list(pr, "spec", "groups")
		if len(groups) == 0 {
			t.Errorf("%s: no groups", pr)
		}
		for _, g := range groups {
			for _, r := range list(g, "rules") {
				if str(r, "alert") == "" || str(r, "expr") == "" {
					t.Errorf("%s: rule %v lacks alert or expr", pr, r)
				}
			}
		}
	}
}

func subset(sub, super map[string]any) bool {
	for k, v := range sub {
		if super[k] != v {
			return false
		}
	}
	return true
}

func probeAllowed(cfg *config.Config, module string, m config.Module, target string) bool {
	for _, g := range cfg.Endpoints {
		if g.Module == module && slices.Contains(g.Targets, target) {
			return true
		}
	}
	for _, p := range m.ProbeAllow {
		// The rule as written; what a name resolves to is checked by
		// certwatch at probe time, not knowable here.
		if r, err := probeallow.Parse(p); err == nil && r.Match(target) {
			return true
		}
	}
	return false
}

// TestChartValues checks single values and what they must change.
func TestChartValues(t *testing.T) {
	t.Run("the schema refuses misspelt keys", func(t *testing.T) {
		for set, wantMsg := range map[string]string{
			"replicaCont=2":                      "replicaCont",
			"config.kubernetes.secret.types={x}": "secret",
			"serviceMonitor.enable=true":         "enable",
			"config.endpoints[0].targets[0]=web": "pattern",
			"spiffe.socket.hostpath=/run/spire":  "hostpath",
			"config.spiffe.bundle_endpoint=x":    "bundle_endpoint",
		} {
			_, err := helmTemplate(t, "cw", "--set", set)
			if err == nil || !strings.Contains(err.Error(), "schema") || !strings.Contains(err.Error(), wantMsg) {
				t.Errorf("--set %s: want a schema error naming %q, got %v", set, wantMsg, err)
			}
		}
	})

	t.Run("no RBAC and no API token without config.kubernetes", func(t *testing.T) {
		objs := mustRender(t, "cw", "--set", "config.kubernetes=null", "--set", "daemonset.enabled=true")
		if rbac := ofKind(objs, "Role", "ClusterRole", "RoleBinding", "ClusterRoleBinding"); len(rbac) != 0 {
			t.Errorf("rendered %v", rbac)
		}
		for _, w := range ofKind(objs, "Deployment", "DaemonSet") {
			if get(w, "spec", "template", "spec", "automountServiceAccountToken") != false {
				t.Errorf("%s mounts an API token", w)
			}
		}
	})

	t.Run("rbac.create=false renders no RBAC", func(t *testing.T) {
		if rbac := ofKind(mustRender(t, "cw", "--set", "rbac.create=false"), "Role", "ClusterRole", "RoleBinding", "ClusterRoleBinding"); len(rbac) != 0 {
			t.Errorf("rendered %v", rbac)
		}
	})

	t.Run("rbac.namespaced needs namespaces", func(t *testing.T) {
		_, err := helmTemplate(t, "cw", "--set", "rbac.namespaced=true")
		if err == nil || !strings.Contains(err.Error(), "config.kubernetes.secrets.namespaces") {
			t.Errorf("want an error naming config.kubernetes.secrets.namespaces, got %v", err)
		}
	})

	t.Run("a Kubernetes section that enables nothing is refused", func(t *testing.T) {
		_, err := helmTemplate(t, "cw", "--set", "config.kubernetes.secrets=null,config.kubernetes.webhooks=false,config.kubernetes.apiservices=false,config.kubernetes.crds=false")
		if err == nil || !strings.Contains(err.Error(), "config.kubernetes enables nothing") {
			t.Errorf("want an error saying config.kubernetes enables nothing, got %v", err)
		}
	})

	t.Run("a configuration change changes the checksum", func(t *testing.T) {
		sum := func(args ...string) string {
			return str(one(t, mustRender(t, "cw", args...), "Deployment", ""), "spec", "template", "metadata", "annotations", "checksum/config")
		}
		if a, b := sum(), sum("--set", "config.global.probe_concurrency=7"); a == b || a == "" {
			t.Errorf("checksum/config %q before and %q after a change", a, b)
		}
	})

	t.Run("a digest pins the image", func(t *testing.T) {
		digest := "sha256:" + strings.Repeat("ab", 32)
		d := one(t, mustRender(t, "cw", "--set", "image.digest="+digest, "--set", "image.tag=9.9.9"), "Deployment", "")
		if got := str(d, "spec", "template", "spec", "containers", 0, "image"); got != imageRepository+"@"+digest {
			t.Errorf("image %q", got)
		}
	})

	t.Run("the PrometheusRule holds the rules file's groups", func(t *testing.T) {
		var file struct {
			Groups []any `yaml:"groups"`
		}
		if err := yaml.Unmarshal(must(os.ReadFile("../alerts/certwatch.rules.yml")), &file); err != nil {
			t.Fatal(err)
		}
		pr := one(t, mustRender(t, "cw", "--set", "prometheusRule.enabled=true"), "PrometheusRule", "")
		if got := list(pr, "spec", "groups"); !reflect.DeepEqual(got, file.Groups) {
			t.Errorf("PrometheusRule groups differ from alerts/certwatch.rules.yml:\n got %v\nwant %v", got, file.Groups)
		}
		pr = one(t, mustRender(t, "cw", "--set", "prometheusRule.enabled=true",
			"--set", "prometheusRule.disabledAlerts={CertwatchLegacyTLSVersion}",
			"--set", "prometheusRule.additionalRuleLabels.cluster=eu"), "PrometheusRule", "")
		n := 0
		for _, g := range list(pr, "spec", "groups") {
			for _, r := range list(g, "rules") {
				n++
				if str(r, "alert") == "CertwatchLegacyTLSVersion" {
					t.Error("a disabled alert was rendered")
				}
				if str(r, "labels", "cluster") != "eu" || str(r, "labels", "severity") == "" {
					t.Errorf("%s: labels %v", str(r, "alert"), get(r, "labels"))
				}
			}
		}
		if n != strings.Count(string(must(os.ReadFile("../alerts/certwatch.rules.yml"))), "- alert: ")-1 {
			t.Errorf("%d alerts rendered", n)
		}
	})

	t.Run("the dashboards ConfigMap holds the dashboards for the sidecar", func(t *testing.T) {
		cm := one(t, mustRender(t, "cw", "--set", "dashboards.enabled=true"), "ConfigMap", "cw-certwatch-dashboards")
		if str(cm, "metadata", "labels", "grafana_dashboard") != "1" {
			t.Errorf("labels %v", get(cm, "metadata", "labels"))
		}
		data, _ := get(cm, "data").(map[string]any)
		sources, _ := filepath.Glob("../dashboards/*.json")
		if len(data) != len(sources) {
			t.Errorf("%d dashboards in the ConfigMap, %d in dashboards/", len(data), len(sources))
		}
		for _, src := range sources {
			want := must(os.ReadFile(src))
			got, _ := data[filepath.Base(src)].(string)
			if got != string(want) {
				t.Errorf("%s differs from %s", filepath.Base(src), src)
			}
			if !json.Valid([]byte(got)) {
				t.Errorf("%s is not JSON", filepath.Base(src))
			}
		}
	})

	t.Run("spiffe.enabled mounts each node's SPIRE agent socket into the node pods", func(t *testing.T) {
		for _, c := range []struct {
			name    string
			args    []string
			volume  map[string]any // the volume's source
			address string
		}{
			{"hostPath", nil,
				map[string]any{"hostPath": map[string]any{"path": "/run/spire/agent/sockets", "type": "Directory"}},
				"unix:///run/spire/agent/sockets/agent.sock"},
			{"SPIFFE CSI driver", []string{"--set", "spiffe.socket.csi=true", "--set", "spiffe.mountPath=/spiffe-workload-api", "--set", "spiffe.socket.fileName=spire-agent.sock"},
				map[string]any{"csi": map[string]any{"driver": "csi.spiffe.io", "readOnly": true}},
				"unix:///spiffe-workload-api/spire-agent.sock"},
		} {
			t.Run(c.name, func(t *testing.T) {
				objs := mustRender(t, "cw", append([]string{"--set", "daemonset.enabled=true", "--set", "spiffe.enabled=true"}, c.args...)...)
				ds := one(t, objs, "DaemonSet", "")
				checkWorkload(t, objs, ds) // runs certwatch --config.check on the node configuration
				pod := get(ds, "spec", "template", "spec")
				var volume map[string]any
				for _, v := range list(pod, "volumes") {
					if str(v, "name") == "spiffe-workload-api" {
						volume, _ = v.(map[string]any)
					}
				}
				want := map[string]any{"name": "spiffe-workload-api"}
				for k, v := range c.volume {
					want[k] = v
				}
				if !reflect.DeepEqual(volume, want) {
					t.Errorf("socket volume %v, want %v", volume, want)
				}
				container := get(pod, "containers", 0)
				dir := strings.TrimPrefix(c.address[:strings.LastIndex(c.address, "/")], "unix://")
				mounted := false
				for _, m := range list(container, "volumeMounts") {
					if str(m, "name") == "spiffe-workload-api" {
						mounted = true
						if str(m, "mountPath") != dir || get(m, "readOnly") != true {
							t.Errorf("socket mount %v, want %s read-only", m, dir)
						}
					}
				}
				if !mounted {
					t.Errorf("the socket volume is not mounted: %v", list(container, "volumeMounts"))
				}
				env := list(container, "env")
				if len(env) != 1 || str(env[0], "name") != "SPIFFE_ENDPOINT_SOCKET" || str(env[0], "value") != c.address {
					t.Errorf("env %v, want SPIFFE_ENDPOINT_SOCKET=%s", env, c.address)
				}
				text, _ := renderedConfig(t, objs, ds)
				var cfg struct {
					SPIFFE struct {
						WorkloadAPI []struct {
							Address string `yaml:"address"`
						} `yaml:"workload_api"`
					} `yaml:"spiffe"`
				}
				if err := yaml.Unmarshal([]byte(text), &cfg); err != nil {
					t.Fatal(err)
				}
				if w := cfg.SPIFFE.WorkloadAPI; len(w) != 1 || w[0].Address != c.address {
					t.Errorf("node configuration watches %+v, want the socket %s:\n%s", w, c.address, text)
				}
				// Only the node pods watch their node's agent.
				d := one(t, objs, "Deployment", "")
				if env := get(d, "spec", "template", "spec", "containers", 0, "env"); env != nil {
					t.Errorf("the Deployment has env %v", env)
				}
				if text, _ := renderedConfig(t, objs, d); strings.Contains(text, "spiffe") {
					t.Errorf("the Deployment's configuration has a spiffe section:\n%s", text)
				}
			})
		}
		t.Run("a spiffe section of daemonset.config is kept", func(t *testing.T) {
			objs := mustRender(t, "cw", "--set", "daemonset.enabled=true", "--set", "spiffe.enabled=true",
				"--set", "daemonset.config.spiffe.workload_api[0].address=unix:///run/spire/agent/sockets/other.sock")
			text, _ := renderedConfig(t, objs, one(t, objs, "DaemonSet", ""))
			if !strings.Contains(text, "other.sock") || strings.Contains(text, "/agent.sock") {
				t.Errorf("node configuration:\n%s", text)
			}
		})
		t.Run("without the DaemonSet it is refused", func(t *testing.T) {
			_, err := helmTemplate(t, "cw", "--set", "spiffe.enabled=true")
			if err == nil || !strings.Contains(err.Error(), "spiffe.enabled needs daemonset.enabled") {
				t.Errorf("want an error saying spiffe.enabled needs daemonset.enabled, got %v", err)
			}
		})
		t.Run("off by default", func(t *testing.T) {
			ds := one(t, mustRender(t, "cw", "--set", "daemonset.enabled=true"), "DaemonSet", "")
			if env := get(ds, "spec", "template", "spec", "containers", 0, "env"); env != nil {
				t.Errorf("env %v", env)
			}
			for _, v := range list(ds, "spec", "template", "spec", "volumes") {
				if str(v, "name") == "spiffe-workload-api" {
					t.Errorf("volume %v", v)
				}
			}
		})
	})

	t.Run("the defaults render nothing optional", func(t *testing.T) {
		objs := mustRender(t, "cw")
		if extra := ofKind(objs, "DaemonSet", "ServiceMonitor", "Probe", "PrometheusRule", "NetworkPolicy", "PodDisruptionBudget"); len(extra) != 0 {
			t.Errorf("rendered %v by default", extra)
		}
		if len(ofKind(objs, "ConfigMap")) != 1 {
			t.Errorf("want only the configuration ConfigMap by default")
		}
	})
}

// ---------------------------------------------------------------------------
// Against a real API server.

// apiPaths maps the kinds the chart renders to their API collection.
var apiPaths = map[string]struct {
	apiVersion, prefix, resource string
	namespaced                   bool
}{
	"ServiceAccount":      {"v1", "/api/v1", "serviceaccounts", true},
	"ConfigMap":           {"v1", "/api/v1", "configmaps", true},
	"Service":             {"v1", "/api/v1", "services", true},
	"Pod":                 {"v1", "/api/v1", "pods", true},
	"Deployment":          {"apps/v1", "/apis/apps/v1", "deployments", true},
	"DaemonSet":           {"apps/v1", "/apis/apps/v1", "daemonsets", true},
	"ClusterRole":         {"rbac.authorization.k8s.io/v1", "/apis/rbac.authorization.k8s.io/v1", "clusterroles", false},
	"ClusterRoleBinding":  {"rbac.authorization.k8s.io/v1", "/apis/rbac.authorization.k8s.io/v1", "clusterrolebindings", false},
	"Role":                {"rbac.authorization.k8s.io/v1", "/apis/rbac.authorization.k8s.io/v1", "roles", true},
	"RoleBinding":         {"rbac.authorization.k8s.io/v1", "/apis/rbac.authorization.k8s.io/v1", "rolebindings", true},
	"NetworkPolicy":       {"networking.k8s.io/v1", "/apis/networking.k8s.io/v1", "networkpolicies", true},
	"PodDisruptionBudget": {"policy/v1", "/apis/policy/v1", "poddisruptionbudgets", true},
}

// monitoringKinds are the prometheus-operator kinds, whose CRDs the test API
// server does not have; checkMonitoring validates them instead.
var monitoringKinds = []string{"ServiceMonitor", "Probe", "PrometheusRule"}

// create POSTs an object; dryRun validates it (strict field validation, all
// admission) without storing it. It fails the test unless it was accepted.
func create(t *testing.T, c *kubetest.Cluster, o object, dryRun bool) {
	t.Helper()
	p, ok := apiPaths[o.kind()]
	if !ok {
		t.Fatalf("%s: no API path known", o)
	}
	if o.apiVersion() != p.apiVersion {
		t.Errorf("%s: apiVersion %s, want %s", o, o.apiVersion(), p.apiVersion)
	}
	path := p.prefix + "/" + p.resource
	if p.namespaced {
		if o.namespace() == "" {
			t.Errorf("%s: namespaced object without a namespace", o)
		}
		path = p.prefix + "/namespaces/" + url.PathEscape(o.namespace()) + "/" + p.resource
	}
	q := url.Values{"fieldValidation": {"Strict"}}
	if dryRun {
		q.Set("dryRun", "All")
	}
	body, err := json.Marshal(map[string]any(o))
	if err != nil {
		t.Fatal(err)
	}
	code, resp := c.Do(t, http.MethodPost, path+"?"+q.Encode(), json.RawMessage(body))
	if code != http.StatusCreated && code != http.StatusOK {
		t.Errorf("%s (dry run %v): %d %s", o, dryRun, code, resp)
	}
}

// ensureNamespaces creates the namespaces the objects live in.
func ensureNamespaces(t *testing.T, c *kubetest.Cluster, objs []object) {
	t.Helper()
	seen := map[string]bool{}
	for _, o := range objs {
		if ns := o.namespace(); ns != "" && !seen[ns] {
			seen[ns] = true
			c.EnsureNamespace(t, ns)
		}
	}
}

func TestChartAgainstAPIServer(t *testing.T) {
	cluster := kubetest.Start(t)

	t.Run("every rendered object passes a server-side dry run", func(t *testing.T) {
		for _, file := range ciValues(t) {
			t.Run(ciName(file), func(t *testing.T) {
				objs := mustRender(t, "dry-"+ciName(file), "-f", file)
				ensureNamespaces(t, cluster, objs)
				for _, o := range objs {
					if slices.Contains(monitoringKinds, o.kind()) {
						if o.apiVersion() != "monitoring.coreos.com/v1" {
							t.Errorf("%s: apiVersion %s", o, o.apiVersion())
						}
						continue // checked by checkMonitoring in TestChartRender
					}
					create(t, cluster, o, true)
				}
			})
		}
	})

	t.Run("the Deployment's pod meets the restricted Pod Security Standard", func(t *testing.T) {
		// Pod Security admission enforces on pods, not on Deployments: dry-run
		// the Deployment's pod in a namespace that enforces "restricted".
		const ns = "psa-restricted"
		code, body := cluster.Do(t, http.MethodPost, "/api/v1/namespaces", map[string]any{
			"apiVersion": "v1", "kind": "Namespace",
			"metadata": map[string]any{"name": ns, "labels": map[string]string{
				"pod-security.kubernetes.io/enforce": "restricted", "pod-security.kubernetes.io/enforce-version": "latest"}},
		})
		if code != http.StatusCreated {
			t.Fatalf("namespace: %d %s", code, body)
		}
		objs := mustRender(t, "psa", "-f", filepath.Join(chartDir, "ci", "everything-on-values.yaml"))
		sa := one(t, objs, "ServiceAccount", "")
		sa["metadata"].(map[string]any)["namespace"] = ns
		create(t, cluster, sa, false) // the ServiceAccount admission plugin wants it to exist
		d := one(t, objs, "Deployment", "")
		pod := object{"apiVersion": "v1", "kind": "Pod",
			"metadata": map[string]any{"name": "certwatch-psa", "namespace": ns, "labels": get(d, "spec", "template", "metadata", "labels")},
			"spec":     get(d, "spec", "template", "spec")}
		create(t, cluster, pod, true)
	})

	t.Run("helm install and uninstall with the defaults", func(t *testing.T) {
		// What a user does first: install with no values at all (no
		// controllers run here, so the pods never start; the objects are stored).
		kubeconfig := cluster.AdminKubeconfig(t)
		out, err := helmCommand(t, "install", "first", chartDir, "--namespace", "helm-install", "--create-namespace", "--kubeconfig", kubeconfig).CombinedOutput()
		if err != nil {
			t.Fatalf("helm install: %v\n%s", err, out)
		}
		t.Logf("helm install:\n%s", out)
		for _, want := range []string{"STATUS: deployed", "NOTES:", "port-forward svc/first-certwatch", "RBAC: list and watch"} {
			if !strings.Contains(string(out), want) {
				t.Errorf("helm install output lacks %q:\n%s", want, out)
			}
		}
		if code, body := cluster.Do(t, http.MethodGet, "/apis/apps/v1/namespaces/helm-install/deployments/first-certwatch", nil); code != http.StatusOK {
			t.Errorf("the installed Deployment: %d %s", code, body)
		}
		if out, err := helmCommand(t, "uninstall", "first", "--namespace", "helm-install", "--kubeconfig", kubeconfig).CombinedOutput(); err != nil {
			t.Fatalf("helm uninstall: %v\n%s", err, out)
		}
		if code, _ := cluster.Do(t, http.MethodGet, "/apis/rbac.authorization.k8s.io/v1/clusterroles/first-certwatch", nil); code != http.StatusNotFound {
			t.Errorf("the ClusterRole after helm uninstall: %d, want 404", code)
		}
	})

	t.Run("certwatch runs under the chart's RBAC, cluster-wide", func(t *testing.T) {
		objs := mustRender(t, "cw", "-f", filepath.Join(chartDir, "ci", "default-values.yaml"))
		cluster.EnsureNamespace(t, "web")
		p, token := installAndRun(t, cluster, objs)
		secret := createTLSSecret(t, cluster, "web", "frontend")
		p.waitForSeries(t, "web/frontend", secret)
		p.checkInformersSynced(t)

		for _, c := range []struct {
			method, path string
			want         int
		}{
			{http.MethodGet, "/api/v1/secrets", http.StatusOK},                                   // list: granted
			{http.MethodGet, "/api/v1/namespaces/web/secrets/frontend", http.StatusForbidden},    // get: never granted
			{http.MethodGet, "/api/v1/pods", http.StatusForbidden},                               // a kind not watched
			{http.MethodGet, "/api/v1/namespaces/web/configmaps", http.StatusForbidden},          // not enabled by default
			{http.MethodDelete, "/api/v1/namespaces/web/secrets/frontend", http.StatusForbidden}, // no writes
		} {
			if code, body := cluster.DoAs(t, token, c.method, c.path, nil); code != c.want {
				t.Errorf("%s %s as the chart's ServiceAccount: %d, want %d: %s", c.method, c.path, code, c.want, body)
			}
		}
	})

	t.Run("certwatch runs under the chart's namespaced RBAC", func(t *testing.T) {
		objs := mustRender(t, "nsrbac", "-f", filepath.Join(chartDir, "ci", "namespaced-rbac-values.yaml"))
		for _, ns := range []string{"web", "payments", "other"} {
			cluster.EnsureNamespace(t, ns)
		}
		p, token := installAndRun(t, cluster, objs)
		secret := createTLSSecret(t, cluster, "payments", "api")
		p.waitForSeries(t, "payments/api", secret)
		p.checkInformersSynced(t)

		for _, c := range []struct {
			path string
			want int
		}{
			{"/api/v1/namespaces/payments/secrets", http.StatusOK},
			{"/api/v1/namespaces/web/configmaps", http.StatusOK},
			{"/api/v1/namespaces/payments/configmaps", http.StatusForbidden}, // only web's
			{"/api/v1/namespaces/other/secrets", http.StatusForbidden},
			{"/api/v1/secrets", http.StatusForbidden}, // not cluster-wide
			{"/apis/admissionregistration.k8s.io/v1/validatingwebhookconfigurations", http.StatusOK},
			{"/apis/apiregistration.k8s.io/v1/apiservices", http.StatusForbidden}, // turned off in these values
			{"/api/v1/namespaces/payments/secrets/api", http.StatusForbidden},
		} {
			if code, body := cluster.DoAs(t, token, http.MethodGet, c.path, nil); code != c.want {
				t.Errorf("GET %s as the chart's ServiceAccount: %d, want %d: %s", c.path, code, c.want, body)
			}
		}
	})
}

// installAndRun creates the chart's ServiceAccount and RBAC for real, then
// runs the built certwatch with the chart's configuration and a kubeconfig
// holding a token of that ServiceAccount, and waits until it is ready.
func installAndRun(t *testing.T, c *kubetest.Cluster, objs []object) (*exporter, string) {
	t.Helper()
	ensureNamespaces(t, c, objs)
	for _, o := range ofKind(objs, "ServiceAccount", "ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding") {
		create(t, c, o, false)
	}
	sa := one(t, objs, "ServiceAccount", "")
	token := c.ServiceAccountToken(t, sa.namespace(), sa.name())
	text, _ := renderedConfig(t, objs, one(t, objs, "Deployment", ""))
	cfgPath := filepath.Join(t.TempDir(), "config.yml")
	if err := os.WriteFile(cfgPath, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	p := startExporter(t, certwatchBinary(t), "--config.file="+cfgPath, "--kubeconfig="+c.Kubeconfig(t, token))
	p.waitReady(t)
	return p, token
}

func createTLSSecret(t *testing.T, c *kubetest.Cluster, ns, name string) *testpki.Chain {
	t.Helper()
	chain := testpki.NewChain(t, testpki.Options{})
	code, body := c.Do(t, http.MethodPost, "/api/v1/namespaces/"+ns+"/secrets", map[string]any{
		"apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/tls",
		"metadata": map[string]any{"name": name},
		"data": map[string]string{
			"tls.crt": base64.StdEncoding.EncodeToString(testpki.PEM(chain.Leaf, chain.Intermediate)),
			"tls.key": base64.StdEncoding.EncodeToString(testpki.KeyPEM(t, chain.Leaf.Key)),
			"ca.crt":  base64.StdEncoding.EncodeToString(testpki.PEM(chain.Root)),
		},
	})
	if code != http.StatusCreated {
		t.Fatalf("creating secret %s/%s: %d %s", ns, name, code, body)
	}
	return chain
}

// ---------------------------------------------------------------------------
// The certwatch process.

type exporter struct {
	addr   string
	cmd    *exec.Cmd
	mu     sync.Mutex
	stderr bytes.Buffer
}

func (e *exporter) Write(p []byte) (int, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.stderr.Write(p)
}

func (e *exporter) log() string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.stderr.String()
}

func startExporter(t *testing.T, bin string, args ...string) *exporter {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	e := &exporter{addr: addr}
	e.cmd = exec.Command(bin, append(args, "--web.listen-address="+addr)...)
	e.cmd.Stdout, e.cmd.Stderr = e, e
	if err := e.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = e.cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan error, 1)
		go func() { done <- e.cmd.Wait() }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = e.cmd.Process.Kill()
			<-done
			t.Error("certwatch did not stop within 10s of SIGTERM")
		}
		if t.Failed() {
			t.Logf("certwatch log:\n%s", e.log())
		}
	})
	return e
}

func (e *exporter) get(path string) (int, string, error) {
	resp, err := http.Get("http://" + e.addr + path)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body), err
}

// waitFor polls until cond holds or 30 s pass.
func (e *exporter) waitFor(t *testing.T, what string, cond func() (bool, string)) {
	t.Helper()
	start := time.Now()
	deadline := start.Add(30 * time.Second)
	for {
		ok, last := cond()
		if ok {
			t.Logf("%s after %v", what, time.Since(start).Round(time.Millisecond))
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s; last: %s", what, last)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func (e *exporter) waitReady(t *testing.T) {
	t.Helper()
	e.waitFor(t, "/-/ready", func() (bool, string) {
		code, body, err := e.get("/-/ready")
		return code == http.StatusOK, fmt.Sprintf("%d %s %v", code, body, err)
	})
}

// waitForSeries waits until /metrics has the Secret's leaf and intermediate.
func (e *exporter) waitForSeries(t *testing.T, target string, chain *testpki.Chain) {
	t.Helper()
	e.waitFor(t, "the Secret "+target+" in /metrics", func() (bool, string) {
		_, body, err := e.get("/metrics")
		if err != nil {
			return false, err.Error()
		}
		n := 0
		for _, line := range strings.Split(body, "\n") {
			if strings.HasPrefix(line, "certwatch_cert_not_after_timestamp_seconds{") &&
				strings.Contains(line, `source="secret"`) && strings.Contains(line, `target="`+target+`"`) &&
				strings.Contains(line, `key="tls.crt"`) {
				n++
			}
		}
		return n == 2, fmt.Sprintf("%d series", n)
	})
}

// checkInformersSynced checks that every informer synced, with no permission error.
func (e *exporter) checkInformersSynced(t *testing.T) {
	t.Helper()
	_, body, err := e.get("/metrics")
	if err != nil {
		t.Fatal(err)
	}
	synced := 0
	for _, line := range strings.Split(body, "\n") {
		switch {
		case strings.HasPrefix(line, "certwatch_kubernetes_informer_synced{"):
			synced++
			if !strings.HasSuffix(line, " 1") {
				t.Errorf("not synced: %s", line)
			}
		case strings.HasPrefix(line, "certwatch_kubernetes_watch_errors_total{") && strings.Contains(line, `class="permission"`):
			if !strings.HasSuffix(line, " 0") {
				t.Errorf("permission errors under the chart's RBAC: %s", line)
			}
		}
	}
	if synced == 0 {
		t.Error("no certwatch_kubernetes_informer_synced series")
	}
}
