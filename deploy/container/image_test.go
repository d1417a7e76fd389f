// Package container holds the configuration baked into certwatch's container
// image (config.yml, copied to /etc/certwatch/config.yml by the Dockerfile at
// the repository root). Its test builds the image with `make image` and
// inspects what came out.
package container

import (
	"archive/tar"
	"bufio"
	"bytes"
	"crypto/rand"
	"debug/elf"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"runtime"
	"slices"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"
)

const (
	repoRoot = "../.."
	// SkipEnv, set to 1, skips the test on a machine without podman.
	skipEnv = "CERTWATCH_SKIP_IMAGE_TESTS"
	// caBundle is what `make image` copies into the image (CA_BUNDLE).
	caBundle = "/etc/ssl/certs/ca-certificates.crt"
)

// podmanArgs run podman with the storage `make image` builds into.
var podmanArgs = []string{"--storage-driver=vfs"}

// imageFile is one regular file of the image's flattened filesystem.
type imageFile struct {
	mode     int64
	uid, gid int
	data     []byte
}

func TestImage(t *testing.T) {
	podman, err := exec.LookPath("podman")
	if err != nil {
		if os.Getenv(skipEnv) == "1" {
			t.Skipf("podman not found and %s=1: the container image is neither built nor inspected", skipEnv)
		}
		t.Fatalf("podman not found: install podman (apt-get install -y podman buildah), or set %s=1 to skip the image test", skipEnv)
	}
	makeBin, err := exec.LookPath("make")
	if err != nil {
		t.Fatal("make not found: install make (apt-get install -y make)")
	}
	version := strings.TrimSpace(string(readFile(t, filepath.Join(repoRoot, "VERSION"))))

	// A tag and build folder of our own: others may build the image at the
	// same time in the same checkout.
	suffix := randomHex(t)
	image := "localhost/certwatch-imagetest:" + suffix
	buildDir := ".build/imagetest-" + suffix
	t.Cleanup(func() {
		_ = os.RemoveAll(filepath.Join(repoRoot, buildDir))
		if out, err := exec.Command(podman, append(podmanArgs, "rmi", "--force", image)...).CombinedOutput(); err != nil {
			t.Logf("removing %s: %v\n%s", image, err, out)
		}
	})

	// Read before building and passed on, so a commit made meanwhile cannot
	// make the label and this test disagree.
	revision := strings.TrimSpace(string(mustOutput(t, exec.Command("git", "-C", repoRoot, "rev-parse", "HEAD"))))

	start := time.Now()
	build := exec.Command(makeBin, "-C", repoRoot, "image",
		"IMAGE=localhost/certwatch-imagetest", "IMAGE_TAG="+suffix, "IMAGE_BUILD_DIR="+buildDir, "REVISION="+revision,
		"IMAGE_BUILDER=podman "+strings.Join(podmanArgs, " ")+" build")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("make image: %v\n%s", err, out)
	}
	t.Logf("make image (static binary + podman build): %v", time.Since(start).Round(100*time.Millisecond))

	// The image's configuration.
	out, err := exec.Command(podman, append(podmanArgs, "image", "inspect", image)...).Output()
	if err != nil {
		t.Fatalf("podman image inspect: %v", err)
	}
	var inspected []struct {
		Architecture, Os string
		Config           struct {
			User         string
			ExposedPorts map[string]any
			Entrypoint   []string
			Cmd          []string
			Labels       map[string]string
		}
	}
	if err := json.Unmarshal(out, &inspected); err != nil || len(inspected) != 1 {
		t.Fatalf("podman image inspect: %v\n%s", err, out)
	}
	if inspected[0].Os != "linux" || inspected[0].Architecture != runtime.GOARCH {
		t.Errorf("platform %s/%s, want linux/%s", inspected[0].Os, inspected[0].Architecture, runtime.GOARCH)
	}
	cfg := inspected[0].Config
	if cfg.User != "65534:65534" {
		t.Errorf("User %q, want 65534:65534", cfg.User)
	}
	if !slices.Equal(cfg.Entrypoint, []string{"/bin/certwatch"}) {
		t.Errorf("Entrypoint %q", cfg.Entrypoint)
	}
	if !slices.Equal(cfg.Cmd, []string{"--config.file=/etc/certwatch/config.yml"}) {
		t.Errorf("Cmd %q", cfg.Cmd)
	}
	if _, ok := cfg.ExposedPorts["9860/tcp"]; !ok || len(cfg.ExposedPorts) != 1 {
		t.Errorf("ExposedPorts %v, want only 9860/tcp", cfg.ExposedPorts)
	}
	for key, want := range map[string]string{
		"org.opencontainers.image.title":    "certwatch",
		"org.opencontainers.image.source":   "https://github.com/certwatch/certwatch",
		"org.opencontainers.image.version":  version,
		"org.opencontainers.image.revision": revision,
	} {
		if got := cfg.Labels[key]; got != want {
			t.Errorf("label %s = %q, want %q", key, got, want)
		}
	}
	for _, key := range []string{"org.opencontainers.image.description", "org.opencontainers.image.licenses"} {
		if cfg.Labels[key] == "" {
			t.Errorf("label %s is missing", key)
		}
	}

	// The image's files, from its layers.
	archive := filepath.Join(t.TempDir(), "image.tar")
	if out, err := exec.Command(podman, append(podmanArgs, "save", "--format=docker-archive", "-o", archive, image)...).CombinedOutput(); err != nil {
		t.Fatalf("podman save: %v\n%s", err, out)
	}
	files := flatten(t, archive)
	var names []string
	for name := range files {
		names = append(names, name)
	}
	sort.Strings(names)
	want := []string{"bin/certwatch", "etc/certwatch/config.yml", "etc/ssl/certs/ca-certificates.crt"}
	if !slices.Equal(names, want) {
		t.Errorf("regular files in the image: %v, want exactly %v", names, want)
	}
	for name, mode := range map[string]int64{"bin/certwatch": 0o755, "etc/certwatch/config.yml": 0o644, "etc/ssl/certs/ca-certificates.crt": 0o644} {
		if f, ok := files[name]; ok && (f.mode&0o7777 != mode || f.uid != 0 || f.gid != 0) {
			t.Errorf("%s: mode %o owner %d:%d, want %o owned by root (readable, not writable, by 65534)", name, f.mode&0o7777, f.uid, f.gid, mode)
		}
	}
	if f, ok := files["etc/certwatch/config.yml"]; ok && !bytes.Equal(f.data, readFile(t, "config.yml")) {
		t.Error("/etc/certwatch/config.yml is not deploy/container/config.yml")
	}
	if f, ok := files["etc/ssl/certs/ca-certificates.crt"]; ok && !bytes.Equal(f.data, readFile(t, caBundle)) {
		t.Errorf("the image's CA bundle is not the build machine's %s", caBundle)
	}
	bin, ok := files["bin/certwatch"]
	if !ok {
		t.FailNow()
	}
	checkStatic(t, bin.data)

	// The extracted binary and configuration, run on this machine.
	dir := t.TempDir()
	binPath := filepath.Join(dir, "certwatch")
	cfgPath := filepath.Join(dir, "config.yml")
	writeFile(t, binPath, bin.data, 0o755)
	writeFile(t, cfgPath, files["etc/certwatch/config.yml"].data, 0o644)

	out, err = exec.Command(binPath, "--version").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "version "+version) || !strings.Contains(string(out), "revision: "+revision) {
		t.Errorf("certwatch --version: %v\n%s\nwant version %s, revision %s", err, out, version, revision)
	}
	if out, err := exec.Command(binPath, "--config.check", "--config.file="+cfgPath).CombinedOutput(); err != nil {
		t.Errorf("certwatch --config.check on the image's configuration: %v\n%s", err, out)
	}
	serveDefaultConfig(t, binPath, cfgPath, version, bytes.Count(files["etc/ssl/certs/ca-certificates.crt"].data, []byte("-----BEGIN CERTIFICATE-----")))
	t.Logf("whole test: %v", time.Since(start).Round(100*time.Millisecond))
}

// flatten reads a docker-archive (podman save) and applies its layers in
// order, returning the regular files of the resulting filesystem.
func flatten(t *testing.T, archive string) map[string]imageFile {
	t.Helper()
	f, err := os.Open(archive)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	entries := map[string][]byte{}
	tr := tar.NewReader(f)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("%s: %v", archive, err)
		}
		if h.Typeflag != tar.TypeReg {
			continue
		}
		data, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		entries[path.Clean(h.Name)] = data
	}
	var manifest []struct {
		Layers []string
	}
	if err := json.Unmarshal(entries["manifest.json"], &manifest); err != nil || len(manifest) != 1 {
		t.Fatalf("%s: manifest.json: %v", archive, err)
	}
	files := map[string]imageFile{}
	for _, layer := range manifest[0].Layers {
		data, ok := entries[path.Clean(layer)]
		if !ok {
			t.Fatalf("%s: layer %s missing", archive, layer)
		}
		lr := tar.NewReader(bytes.NewReader(data))
		for {
			h, err := lr.Next()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				t.Fatalf("layer %s: %v", layer, err)
			}
			name := strings.TrimPrefix(path.Clean("/"+h.Name), "/")
			if base := path.Base(name); strings.HasPrefix(base, ".wh.") {
				target := path.Join(path.Dir(name), strings.TrimPrefix(base, ".wh."))
				for n := range files {
					if n == target || strings.HasPrefix(n, target+"/") {
						delete(files, n)
					}
				}
				continue
			}
			switch h.Typeflag {
			case tar.TypeDir:
			case tar.TypeReg:
				content, err := io.ReadAll(lr)
				if err != nil {
					t.Fatal(err)
				}
				files[name] = imageFile{mode: h.Mode, uid: h.Uid, gid: h.Gid, data: content}
			default:
				t.Errorf("layer %s: unexpected %s (type %c) in a FROM scratch image", layer, name, h.Typeflag)
			}
		}
	}
	return files
}

// checkStatic fails unless the binary needs no dynamic loader or library
// (the image has no libc).
func checkStatic(t *testing.T, data []byte) {
	t.Helper()
	ef, err := elf.NewFile(bytes.NewReader(data))
	if err != nil {
		t.Fatalf("/bin/certwatch is not an ELF binary: %v", err)
	}
	defer ef.Close()
	for _, p := range ef.Progs {
		if p.Type == elf.PT_INTERP || p.Type == elf.PT_DYNAMIC {
			t.Errorf("/bin/certwatch is dynamically linked (program header %v)", p.Type)
		}
	}
	if libs, _ := ef.ImportedLibraries(); len(libs) > 0 {
		t.Errorf("/bin/certwatch needs %v", libs)
	}
}

// serveDefaultConfig runs the image's binary with the image's configuration
// and checks it exports every certificate of the CA bundle it watches (the
// configuration names the bundle by its absolute path, which on this machine
// is the same file, as checked above).
func serveDefaultConfig(t *testing.T, bin, cfgPath, version string, certs int) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	var logs bytes.Buffer
	cmd := exec.Command(bin, "--config.file="+cfgPath, "--web.listen-address="+addr)
	cmd.Stderr = &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		_ = cmd.Wait()
		if t.Failed() && logs.Len() > 0 {
			t.Logf("certwatch log:\n%s", logs.String())
		}
	}()
	var body string
	deadline := time.Now().Add(15 * time.Second)
	for {
		resp, err := http.Get("http://" + addr + "/metrics")
		if err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				body = string(b)
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("certwatch with the image's configuration did not serve /metrics: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	resp, err := http.Get("http://" + addr + "/-/ready")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("/-/ready answered %d without a Kubernetes source", resp.StatusCode)
	}
	target := `target="` + caBundle + `"`
	var success string
	series := 0
	sc := bufio.NewScanner(strings.NewReader(body))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	buildInfo := false
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "certwatch_target_success{") && strings.Contains(line, target):
			success = line[strings.LastIndexByte(line, ' ')+1:]
		case strings.HasPrefix(line, "certwatch_cert_not_after_timestamp_seconds{") && strings.Contains(line, target):
			series++
		case strings.HasPrefix(line, "certwatch_build_info{") && strings.Contains(line, `version="`+version+`"`):
			buildInfo = true
		}
	}
	if success != "1" {
		t.Errorf("certwatch_target_success for %s = %q, want 1", caBundle, success)
	}
	if series != certs || certs == 0 {
		t.Errorf("%d certificate series for %s, the bundle holds %d certificates", series, caBundle, certs)
	}
	if !buildInfo {
		t.Errorf("no certwatch_build_info with version %q", version)
	}
}

func readFile(t *testing.T, name string) []byte {
	t.Helper()
	data, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func writeFile(t *testing.T, name string, data []byte, mode os.FileMode) {
	t.Helper()
	if err := os.WriteFile(name, data, mode); err != nil {
		t.Fatal(err)
	}
}

func mustOutput(t *testing.T, cmd *exec.Cmd) []byte {
	t.Helper()
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s: %v", strings.Join(cmd.Args, " "), err)
	}
	return out
}

func randomHex(t *testing.T) string {
	t.Helper()
	b := make([]byte, 6)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}
