// Package decode turns the bytes of a certificate container into
// certificates: PEM (bundles, certificates mixed with keys and other blocks,
// OpenSSL's TRUSTED CERTIFICATE), DER, PKCS#12/PFX, Java keystores (JKS and
// JCEKS) and kubeconfig files, recognised by content. Certificate revocation lists, in
// PEM ("X509 CRL" blocks) or DER, are summarised beside the certificates
// (package crl), their entries counted, not kept. Private keys are parsed only to
// keep their public halves, for the key-match check. Every source that reads
// stored certificates (files, Kubernetes objects) decodes with it.
package decode

import (
	"bytes"
	"crypto"
	"crypto/x509"
	"encoding/asn1"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"

	"go.yaml.in/yaml/v3"
	"software.sslmate.com/src/go-pkcs12"

	"github.com/certwatch/certwatch/crl"
	"github.com/certwatch/certwatch/source"
)

// entry is the certificates found under one key of a file: the whole file
// for PEM, DER and PKCS#12, an alias of a Java keystore, a cluster or user of
// a kubeconfig.
type entry struct {
	key        string
	certs      []*x509.Certificate
	keyPublics []crypto.PublicKey
	crls       []source.CRL
	err        error // a partial read: certs may still hold what was readable
}

// Entry is what Decode found under one key of the input.
type Entry struct {
	// Key is the sub-location: a keystore alias, "cluster/NAME" or
	// "user/NAME" of a kubeconfig; empty for PEM, DER and PKCS#12.
	Key        string
	Certs      []*x509.Certificate
	KeyPublics []crypto.PublicKey
	// CRLs summarise the revocation lists found with (or instead of) the
	// certificates. An entry with CRLs and no certificate is a good entry.
	CRLs []source.CRL
	// Err is set when the entry could only be partly read: Certs and CRLs
	// hold what was readable.
	Err error
}

// Decode recognises the format of data and returns every certificate and
// CRL it holds. password (nil when none is configured) opens PKCS#12 and
// Java keystores (JKS, JCEKS). Errors carry a source.Class; ErrNoCertificates marks well-formed
// content with neither certificates nor CRLs (a key, a CSR).
func Decode(data, password []byte) ([]Entry, error) {
	return DecodeFile(data, password, nil)
}

// ReadFile reads a file that a kubeconfig refers to (certificate-authority,
// client-certificate, client-key), named as the kubeconfig writes it. Its
// errors carry a source.Class and never the file's content.
type ReadFile func(ref string) ([]byte, error)

// DecodeFile is Decode for the content of a file: read resolves the files a
// kubeconfig refers to instead of embedding them. With read nil (content
// that has no place on a filesystem: a Kubernetes object, a download), an
// entry that refers to a file is reported with a config-class error. The
// content read is parsed for certificates only (and keys for their public
// halves), and wiped after.
func DecodeFile(data, password []byte, read ReadFile) ([]Entry, error) {
	entries, err := parseWith(data, password, read)
	out := make([]Entry, len(entries))
	for i, e := range entries {
		out[i] = Entry{Key: e.key, Certs: e.certs, KeyPublics: e.keyPublics, CRLs: e.crls, Err: e.err}
	}
	return out, err
}

// DefaultMaxCertificates is the most certificates one place may hold unless
// SetMaxCertificates says otherwise (global.max_certificates_per_place).
const DefaultMaxCertificates = 1000

// maxCertificates bounds the certificates of one place: one PEM, DER or
// PKCS#12 input, one keystore alias, one kubeconfig cluster or user. A 4 MiB
// PEM bundle can hold 12,500 certificates, three series each; a place with
// more than the limit reports too_large and no certificate. Every source of
// stored certificates decodes here, so one limit serves them all.
var maxCertificates atomic.Int64

func init() { maxCertificates.Store(DefaultMaxCertificates) }

// SetMaxCertificates sets the per-place certificate limit; n <= 0 restores
// the default. It applies to what is decoded from then on.
func SetMaxCertificates(n int) {
	if n <= 0 {
		n = DefaultMaxCertificates
	}
	maxCertificates.Store(int64(n))
}

// MaxCertificates returns the per-place certificate limit in force.
func MaxCertificates() int { return int(maxCertificates.Load()) }

// tooManyCertificates is the error of a place over the limit; it names the
// count so that the log line of the place explains itself.
func tooManyCertificates(n, limit int) error {
	return source.Errorf(source.ClassTooLarge, "holds %d certificates, over the limit of %d (global.max_certificates_per_place)", n, limit)
}

// KeyPublics returns the public halves of the unencrypted private keys in
// PEM data (a tls.key), and nothing else.
func KeyPublics(data []byte) []crypto.PublicKey {
	e, _ := parsePEM(data, 0)
	return e.keyPublics
}

// ErrNoCertificates marks content that is well-formed but holds no
// certificate (a key file, a CSR); directory walks skip such files.
var ErrNoCertificates = errors.New("no certificate found")

// TakesPassword says whether Decode would read data as one of the formats
// that take a password, PKCS#12 or a Java keystore: the Kubernetes source parses such
// values again when their password changes, and nothing else.
func TakesPassword(data []byte) bool {
	switch {
	case isKeystore(data):
		return true
	case len(data) == 0 || data[0] != 0x30 || bytes.Contains(data, pemBegin), crl.LooksLikeCRL(data):
		return false
	}
	_, err := x509.ParseCertificates(data) // DER certificates are sequences too
	return err != nil
}

// parse recognises the file's format by its content and extracts every
// certificate it holds. password may be nil. Private keys are parsed only to
// take their public halves and are not kept.
func parse(data []byte, password []byte) ([]entry, error) { return parseWith(data, password, nil) }

// parseWith is parse, with read resolving a kubeconfig's file references.
func parseWith(data, password []byte, read ReadFile) ([]entry, error) {
	limit := MaxCertificates()
	switch {
	case len(bytes.TrimSpace(data)) == 0:
		return nil, source.Errorf(source.ClassParse, "empty file")
	case bytes.HasPrefix(data, jksMagic):
		return parseKeystore(data, password, limit, false)
	case bytes.HasPrefix(data, jceksMagic):
		return parseKeystore(data, password, limit, true)
	case bytes.Contains(data, []byte("-----BEGIN ")):
		e, err := parsePEM(data, limit)
		if err != nil {
			return nil, err
		}
		return []entry{e}, nil
	case looksLikeKubeconfig(data):
		return parseKubeconfig(data, limit, read)
	}
	if certs, err := x509.ParseCertificates(data); err == nil && len(certs) > 0 {
		if len(certs) > limit {
			return nil, tooManyCertificates(len(certs), limit)
		}
		return []entry{{certs: detach(certs)}}, nil
	}
	if crl.LooksLikeCRL(data) {
		summary, err := crl.Summary(data)
		if err != nil {
			return nil, source.WithClass(source.ClassParse, fmt.Errorf("CRL: %w", err))
		}
		return []entry{{crls: []source.CRL{summary}}}, nil
	}
	if data[0] == 0x30 { // DER SEQUENCE: PKCS#12 is the remaining candidate
		e, err := parsePKCS12(data, password, limit)
		if err == nil {
			return []entry{e}, nil
		}
		var classed *source.Error
		if errors.As(err, &classed) {
			return nil, err
		}
		return nil, source.Errorf(source.ClassParse, "not a PEM, DER, PKCS#12, Java keystore or kubeconfig file: %w", err)
	}
	return nil, source.Errorf(source.ClassParse, "not a PEM, DER, PKCS#12, Java keystore or kubeconfig file")
}

var pemBegin = []byte("-----BEGIN ")

// countPEMCertificates counts the certificate blocks of PEM data without
// decoding them, so that a bundle over the limit costs a scan, not thousands
// of parses.
func countPEMCertificates(data []byte) int {
	n := 0
	for rest := data; ; {
		i := bytes.Index(rest, pemBegin)
		if i < 0 {
			return n
		}
		rest = rest[i+len(pemBegin):]
		for _, typ := range [...]string{"CERTIFICATE-----", "X509 CERTIFICATE-----", "TRUSTED CERTIFICATE-----"} {
			if bytes.HasPrefix(rest, []byte(typ)) {
				n++
				break
			}
		}
	}
}

// parsePEM reads every block of PEM data. limit > 0 refuses data with more
// certificate blocks than that (0: no limit, for key-only reads).
func parsePEM(data []byte, limit int) (entry, error) {
	var e entry
	if limit > 0 {
		if n := countPEMCertificates(data); n > limit {
			return e, tooManyCertificates(n, limit)
		}
	}
	var problems []string
	rest := data
	for n := 1; ; n++ {
		i := bytes.Index(rest, pemBegin)
		if i < 0 {
			break
		}
		// pem.Decode skips a malformed block silently and returns the next
		// good one, which would hide a corrupt certificate in a bundle; so
		// each block is decoded on its own, from its BEGIN line to the next.
		end := len(rest)
		if j := bytes.Index(rest[i+len(pemBegin):], pemBegin); j >= 0 {
			end = i + len(pemBegin) + j
		}
		block, _ := pem.Decode(rest[i:end])
		rest = rest[end:]
		if block == nil {
			problems = append(problems, fmt.Sprintf("PEM block %d: truncated or malformed PEM block", n))
			continue
		}
		// A parsed certificate keeps pointing into block.Bytes (Raw,
		// RawTBSCertificate, ...), so only blocks that became certificates
		// are kept; every other block is wiped, as it may be key material.
		keep := false
		switch block.Type {
		case "CERTIFICATE", "X509 CERTIFICATE":
			c, err := parseCertificate(block.Bytes, true)
			if err != nil {
				problems = append(problems, fmt.Sprintf("PEM block %d: certificate: %v", n, err))
				break
			}
			e.certs, keep = append(e.certs, c), true
		case "TRUSTED CERTIFICATE":
			// OpenSSL's trusted form: the certificate followed by trust settings.
			var raw asn1.RawValue
			if _, err := asn1.Unmarshal(block.Bytes, &raw); err != nil {
				problems = append(problems, fmt.Sprintf("PEM block %d: trusted certificate: malformed DER", n))
				break
			}
			c, err := parseCertificate(raw.FullBytes, true)
			if err != nil {
				problems = append(problems, fmt.Sprintf("PEM block %d: trusted certificate: %v", n, err))
				break
			}
			e.certs, keep = append(e.certs, c), true
		case "X509 CRL":
			// The summary copies what it keeps: the block is wiped below.
			summary, err := crl.Summary(block.Bytes)
			if err != nil {
				problems = append(problems, fmt.Sprintf("PEM block %d: CRL: %v", n, err))
				break
			}
			e.crls = append(e.crls, summary)
		case "PRIVATE KEY", "RSA PRIVATE KEY", "EC PRIVATE KEY":
			if _, encrypted := block.Headers["DEK-Info"]; encrypted {
				break // cannot compare without the passphrase
			}
			if pub := publicOfPrivateDER(block.Type, block.Bytes); pub != nil {
				e.keyPublics = append(e.keyPublics, pub)
			}
		}
		if !keep {
			clear(block.Bytes) // key bytes do not outlive parsing
		}
	}
	switch {
	case len(problems) > 0:
		// The message names the block but never echoes its content.
		e.err = source.Errorf(source.ClassParse, "%s", strings.Join(problems, "; "))
		if len(e.certs) == 0 && len(e.crls) == 0 {
			return e, e.err
		}
	case len(e.certs) == 0 && len(e.crls) == 0:
		return e, source.WithClass(source.ClassParse, ErrNoCertificates)
	}
	return e, nil
}

// publicOfPrivateDER returns the public half of a private key, nil when it
// does not parse.
func publicOfPrivateDER(blockType string, der []byte) crypto.PublicKey {
	var key any
	var err error
	switch blockType {
	case "RSA PRIVATE KEY":
		key, err = x509.ParsePKCS1PrivateKey(der)
	case "EC PRIVATE KEY":
		key, err = x509.ParseECPrivateKey(der)
	default:
		key, err = x509.ParsePKCS8PrivateKey(der)
	}
	if err != nil {
		return nil
	}
	return publicOf(key)
}

func publicOf(key any) crypto.PublicKey {
	if s, ok := key.(crypto.Signer); ok {
		return s.Public()
	}
	return nil
}

// detach re-parses certificates from copies of their encodings (or takes
// the interned ones). A parsed certificate points into the bytes it was
// parsed from; for DER those are the file's own buffer, which load wipes
// once parsing is done (it may hold private keys). go-pkcs12 happens to copy
// today, but does not promise to.
func detach(certs []*x509.Certificate) []*x509.Certificate {
	out := make([]*x509.Certificate, 0, len(certs))
	for _, c := range certs {
		own, err := parseCertificate(c.Raw, false)
		if err != nil { // cannot happen: it parsed a moment ago
			own = c
		}
		out = append(out, own)
	}
	return out
}

func parsePKCS12(data, password []byte, limit int) (entry, error) {
	if err := checkPKCS12Work(data); err != nil {
		return entry{}, err
	}
	pw := string(password)
	key, leaf, cas, err := pkcs12.DecodeChain(data, pw)
	if err == nil {
		if n := 1 + len(cas); n > limit {
			return entry{}, tooManyCertificates(n, limit)
		}
		e := entry{certs: detach(append([]*x509.Certificate{leaf}, cas...))}
		if pub := publicOf(key); pub != nil {
			e.keyPublics = []crypto.PublicKey{pub}
		}
		return e, nil
	}
	if errors.Is(err, pkcs12.ErrIncorrectPassword) || errors.Is(err, pkcs12.ErrDecryption) {
		if password == nil {
			return entry{}, source.Errorf(source.ClassWrongPassword, "PKCS#12 file is password protected and no password_file is configured")
		}
		return entry{}, source.Errorf(source.ClassWrongPassword, "PKCS#12: the configured password does not decrypt it")
	}
	// A trust store (certificates, no key) is PKCS#12 too.
	certs, tsErr := pkcs12.DecodeTrustStore(data, pw)
	if tsErr == nil && len(certs) > 0 {
		if len(certs) > limit {
			return entry{}, tooManyCertificates(len(certs), limit)
		}
		return entry{certs: detach(certs)}, nil
	}
	return entry{}, err
}

// kubeconfig is the part of a kubeconfig file that holds certificates,
// embedded (the -data fields, base64) or as paths of files.
type kubeconfig struct {
	Clusters []struct {
		Name    string `yaml:"name"`
		Cluster struct {
			CAData string `yaml:"certificate-authority-data"`
			CAFile string `yaml:"certificate-authority"`
		} `yaml:"cluster"`
	} `yaml:"clusters"`
	Users []struct {
		Name string `yaml:"name"`
		User struct {
			CertData string `yaml:"client-certificate-data"`
			CertFile string `yaml:"client-certificate"`
			KeyData  string `yaml:"client-key-data"`
			KeyFile  string `yaml:"client-key"`
		} `yaml:"user"`
	} `yaml:"users"`
}

func looksLikeKubeconfig(data []byte) bool {
	return bytes.Contains(data, []byte("clusters:")) || bytes.Contains(data, []byte("kind: Config"))
}

// parseKubeconfig reports one entry per cluster with a CA and per user with
// a client certificate, embedded or referred to. As in kubectl, embedded
// data wins over a file named beside it. A reference that cannot be read is
// an error of its entry alone.
func parseKubeconfig(data []byte, limit int, read ReadFile) ([]entry, error) {
	var kc kubeconfig
	if err := yaml.Unmarshal(data, &kc); err != nil {
		return nil, source.Errorf(source.ClassParse, "kubeconfig: %v", yamlErrorWithoutContent(err))
	}
	var entries []entry
	for _, c := range kc.Clusters {
		if e, ok := kubeconfigCerts("cluster/"+c.Name, "certificate-authority", c.Cluster.CAData, c.Cluster.CAFile, limit, read); ok {
			entries = append(entries, e)
		}
	}
	for _, u := range kc.Users {
		e, ok := kubeconfigCerts("user/"+u.Name, "client-certificate", u.User.CertData, u.User.CertFile, limit, read)
		if !ok {
			continue
		}
		// The key only serves the key-match check: one that cannot be
		// read or parsed is not reported, as an embedded one.
		var keyPEM []byte
		switch {
		case u.User.KeyData != "":
			keyPEM, _ = base64.StdEncoding.DecodeString(strings.TrimSpace(u.User.KeyData))
		case u.User.KeyFile != "" && read != nil:
			keyPEM, _ = read(u.User.KeyFile)
		}
		if keyPEM != nil {
			if ke, _ := parsePEM(keyPEM, 0); ke.keyPublics != nil {
				e.keyPublics = ke.keyPublics
			}
			clear(keyPEM)
		}
		entries = append(entries, e)
	}
	if len(entries) == 0 {
		return nil, source.WithClass(source.ClassParse, ErrNoCertificates)
	}
	return entries, nil
}

// kubeconfigCerts reads the certificates of one cluster or user from its
// embedded data or, failing that, from the file it names (field is the
// kubeconfig's name for it). ok is false when it has neither.
func kubeconfigCerts(key, field, b64, file string, limit int, read ReadFile) (e entry, ok bool) {
	e.key = key
	where := key
	var pemData []byte
	switch {
	case b64 != "":
		der, err := base64.StdEncoding.DecodeString(strings.TrimSpace(b64))
		if err != nil {
			e.err = source.Errorf(source.ClassParse, "%s: invalid base64", key)
			return e, true
		}
		pemData = der
	case file != "" && read == nil:
		e.err = source.Errorf(source.ClassConfig, "%s: %s refers to the file %s, which is read only for kubeconfig files found by the files source; embed it as %s-data", key, field, file, field)
		return e, true
	case file != "":
		content, err := read(file)
		if err != nil {
			e.err = source.WithClass(source.Infer(err, source.ClassUnknown), fmt.Errorf("%s: %s %s: %w", key, field, file, err))
			return e, true
		}
		defer clear(content)
		pemData, where = content, fmt.Sprintf("%s: %s %s", key, field, file)
	default:
		return e, false
	}
	pe, err := parsePEM(pemData, limit)
	if err != nil {
		e.err = source.WithClass(source.ClassParse, fmt.Errorf("%s: %w", where, err))
		return e, true
	}
	e.certs, e.crls, e.err = pe.certs, pe.crls, pe.err
	return e, true
}

// yamlErrorWithoutContent keeps YAML errors to their line numbers: some
// quote the offending value, which in a kubeconfig could be key material.
func yamlErrorWithoutContent(err error) string {
	msg := err.Error()
	if i := strings.Index(msg, "`"); i >= 0 {
		return msg[:i] + "(value omitted)"
	}
	return msg
}
