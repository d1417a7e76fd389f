package endpoint_test

// Small fake servers for every STARTTLS protocol: each speaks just enough of
// its protocol's opening, checks what the client sends, and then either
// starts TLS on the connection or refuses.

import (
	"bufio"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"

	"github.com/certwatch/certwatch/internal/testpki"
	"github.com/certwatch/certwatch/source"
	"github.com/certwatch/certwatch/source/endpoint"
)

// epDialogue speaks a protocol's plain-text opening on c, reading through r,
// and says whether TLS is to start next.
type epDialogue func(c net.Conn, r *bufio.Reader) (upgrade bool, err error)

// epFakeServer runs a dialogue on every connection and, when it agrees,
// the server side of TLS. Errors in what the client sent are collected.
type epFakeServer struct {
	*epServer
	states chan tls.ConnectionState
	mu     sync.Mutex
	errs   []error
}

func epFake(t testing.TB, cfg *tls.Config, d epDialogue) *epFakeServer {
	t.Helper()
	s := &epFakeServer{states: make(chan tls.ConnectionState, 16)}
	s.epServer = epServe(t, func(c net.Conn) {
		_ = c.SetDeadline(time.Now().Add(10 * time.Second))
		r := bufio.NewReader(c)
		upgrade, err := d(c, r)
		if err != nil {
			s.fail(err)
			return
		}
		if !upgrade {
			_, _ = io.Copy(io.Discard, r) // until the client hangs up
			return
		}
		// A MySQL client sends its ClientHello right behind the SSLRequest,
		// so bytes may already sit in r: TLS reads them first.
		epServeTLS(&epBufConn{Conn: c, r: r}, cfg, s.states)
	})
	return s
}

// epBufConn reads through r, which may hold bytes already read from Conn.
type epBufConn struct {
	net.Conn
	r *bufio.Reader
}

func (c *epBufConn) Read(p []byte) (int, error) { return c.r.Read(p) }

// epNoPipelining fails when the client has sent more than the server has
// read so far: a STARTTLS client must wait for each answer, above all for
// the go-ahead before its ClientHello.
func epNoPipelining(r *bufio.Reader) error {
	if n := r.Buffered(); n > 0 {
		return fmt.Errorf("the client sent %d bytes ahead of the server's answer", n)
	}
	return nil
}

// state returns the server's view of the next completed TLS handshake.
func (s *epFakeServer) state(t testing.TB) tls.ConnectionState {
	t.Helper()
	return (&epTLSServer{epServer: s.epServer, states: s.states}).state(t)
}

func (s *epFakeServer) fail(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.errs = append(s.errs, err)
}

func (s *epFakeServer) errors() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return errors.Join(s.errs...)
}

// Scripted line protocols: say sends text, expect reads a line and checks
// its beginning.
type epStep struct{ say, expect string }

func epSay(s string) epStep      { return epStep{say: s} }
func epExpect(s string) epStep   { return epStep{expect: s} }
func epLines(s ...string) string { return strings.Join(s, "\r\n") + "\r\n" }

func epScript(upgrade bool, steps ...epStep) epDialogue {
	return func(c net.Conn, r *bufio.Reader) (bool, error) {
		for _, st := range steps {
			if st.say != "" {
				if err := epNoPipelining(r); err != nil {
					return false, err
				}
				if _, err := io.WriteString(c, st.say); err != nil {
					return false, err
				}
				continue
			}
			line, err := r.ReadString('\n')
			if err != nil {
				return false, fmt.Errorf("waiting for %q: %w", st.expect, err)
			}
			if !strings.HasSuffix(line, "\r\n") {
				return false, fmt.Errorf("line %q does not end in CRLF", line)
			}
			if line = strings.TrimSuffix(line, "\r\n"); !strings.HasPrefix(line, st.expect) {
				return false, fmt.Errorf("got %q, want %q", line, st.expect)
			}
		}
		return upgrade, nil
	}
}

// LDAP: the StartTLS extended operation (RFC 4511 section 4.14).
const epLDAPStartTLSOID = "1.3.6.1.4.1.1466.20037"

func epReadBER(r *bufio.Reader) ([]byte, error) {
	head := make([]byte, 2)
	if _, err := io.ReadFull(r, head); err != nil {
		return nil, err
	}
	n := int(head[1])
	if head[1]&0x80 != 0 {
		lenBytes := make([]byte, head[1]&0x7f)
		if len(lenBytes) == 0 || len(lenBytes) > 3 {
			return nil, fmt.Errorf("BER length form %#x", head[1])
		}
		if _, err := io.ReadFull(r, lenBytes); err != nil {
			return nil, err
		}
		head = append(head, lenBytes...)
		n = 0
		for _, b := range lenBytes {
			n = n<<8 | int(b)
		}
	}
	body := make([]byte, n)
	if _, err := io.ReadFull(r, body); err != nil {
		return nil, err
	}
	return append(head, body...), nil
}

// epLDAPRequestID checks that msg is an ExtendedRequest for StartTLS and
// returns its message ID.
func epLDAPRequestID(msg []byte) (int64, error) {
	s := cryptobyte.String(msg)
	var seq, req, oid cryptobyte.String
	var id int64
	if !s.ReadASN1(&seq, cbasn1.SEQUENCE) || !s.Empty() || !seq.ReadASN1Integer(&id) ||
		!seq.ReadASN1(&req, cbasn1.Tag(0x40|23).Constructed()) || !seq.Empty() ||
		!req.ReadASN1(&oid, cbasn1.Tag(0).ContextSpecific()) || !req.Empty() {
		return 0, fmt.Errorf("not an LDAP ExtendedRequest: %x", msg)
	}
	if string(oid) != epLDAPStartTLSOID {
		return 0, fmt.Errorf("ExtendedRequest for %q, want %q", oid, epLDAPStartTLSOID)
	}
	return id, nil
}

// epLDAPResponse is an ExtendedResponse with the given result code, laid out
// as OpenLDAP sends it (matchedDN, diagnosticMessage, responseName).
func epLDAPResponse(id, resultCode int64, diagnostic string) []byte {
	var b cryptobyte.Builder
	b.AddASN1(cbasn1.SEQUENCE, func(msg *cryptobyte.Builder) {
		msg.AddASN1Int64(id)
		msg.AddASN1(cbasn1.Tag(0x40|24).Constructed(), func(resp *cryptobyte.Builder) {
			resp.AddASN1Enum(resultCode)
			resp.AddASN1OctetString(nil)
			resp.AddASN1OctetString([]byte(diagnostic))
			resp.AddASN1(cbasn1.Tag(10).ContextSpecific(), func(name *cryptobyte.Builder) {
				name.AddBytes([]byte(epLDAPStartTLSOID))
			})
		})
	})
	return b.BytesOrPanic()
}

func epLDAP(resultCode int64) epDialogue {
	return func(c net.Conn, r *bufio.Reader) (bool, error) {
		msg, err := epReadBER(r)
		if err != nil {
			return false, fmt.Errorf("reading the ExtendedRequest: %w", err)
		}
		id, err := epLDAPRequestID(msg)
		if err != nil {
			return false, err
		}
		if err := epNoPipelining(r); err != nil {
			return false, err
		}
		if _, err := c.Write(epLDAPResponse(id, resultCode, "")); err != nil {
			return false, err
		}
		return resultCode == 0, nil
	}
}

// PostgreSQL: the SSLRequest message and its one-byte answer.
var epPostgresSSLRequest = []byte{0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f} // length 8, code 80877103

func epPostgres(answer byte) epDialogue {
	return func(c net.Conn, r *bufio.Reader) (bool, error) {
		req := make([]byte, 8)
		if _, err := io.ReadFull(r, req); err != nil {
			return false, fmt.Errorf("reading the SSLRequest: %w", err)
		}
		if string(req) != string(epPostgresSSLRequest) {
			return false, fmt.Errorf("got % x, want the SSLRequest % x", req, epPostgresSSLRequest)
		}
		if err := epNoPipelining(r); err != nil {
			return false, err
		}
		if _, err := c.Write([]byte{answer}); err != nil {
			return false, err
		}
		return answer == 'S', nil
	}
}

// MySQL: the server's v10 handshake packet, and the client's SSLRequest.
const (
	epMySQLLongPassword = 0x00000001
	epMySQLProtocol41   = 0x00000200
	epMySQLSSL          = 0x00000800
	epMySQLSecureConn   = 0x00008000
	epMySQLPluginAuth   = 0x00080000
)

func epMySQLPacket(seq byte, payload []byte) []byte {
	n := len(payload)
	return append([]byte{byte(n), byte(n >> 8), byte(n >> 16), seq}, payload...)
}

func epMySQLGreeting(caps uint32) []byte {
	p := []byte{10}
	p = append(p, "8.0.36-certwatch-fake\x00"...)
	p = binary.LittleEndian.AppendUint32(p, 42) // connection id
	p = append(p, "abcdefgh"...)                // auth-plugin-data part 1
	p = append(p, 0)                            // filler
	p = binary.LittleEndian.AppendUint16(p, uint16(caps))
	p = append(p, 255)                         // utf8mb4_0900_ai_ci
	p = binary.LittleEndian.AppendUint16(p, 2) // SERVER_STATUS_AUTOCOMMIT
	p = binary.LittleEndian.AppendUint16(p, uint16(caps>>16))
	p = append(p, 21)                  // auth-plugin-data length
	p = append(p, make([]byte, 10)...) // reserved
	p = append(p, "ijklmnopqrst\x00"...)
	p = append(p, "caching_sha2_password\x00"...)
	return epMySQLPacket(0, p)
}

var epMySQLServerCaps uint32 = epMySQLLongPassword | epMySQLProtocol41 | epMySQLSecureConn | epMySQLPluginAuth

// epMySQL sends greeting and, when offersSSL, expects the SSLRequest.
func epMySQL(greeting []byte, offersSSL bool) epDialogue {
	return func(c net.Conn, r *bufio.Reader) (bool, error) {
		if _, err := c.Write(greeting); err != nil {
			return false, err
		}
		if !offersSSL {
			return false, nil
		}
		head := make([]byte, 4)
		if _, err := io.ReadFull(r, head); err != nil {
			return false, fmt.Errorf("reading the SSLRequest: %w", err)
		}
		n := int(head[0]) | int(head[1])<<8 | int(head[2])<<16
		if n != 32 || head[3] != 1 {
			return false, fmt.Errorf("SSLRequest header % x, want length 32 and sequence 1", head)
		}
		body := make([]byte, n)
		if _, err := io.ReadFull(r, body); err != nil {
			return false, err
		}
		caps := binary.LittleEndian.Uint32(body)
		if caps&epMySQLSSL == 0 || caps&epMySQLProtocol41 == 0 {
			return false, fmt.Errorf("SSLRequest capabilities %#x lack CLIENT_SSL or CLIENT_PROTOCOL_41", caps)
		}
		return true, nil
	}
}

// epEndlessLine greets with a line that never ends.
func epEndlessLine(c net.Conn) {
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	chunk := []byte("220 " + strings.Repeat("a", 4092))
	for {
		if _, err := c.Write(chunk); err != nil {
			return
		}
		chunk = chunk[:0]
		chunk = append(chunk, strings.Repeat("a", 4096)...)
	}
}

// TestStartTLSFakes runs every STARTTLS protocol against a fake server that
// agrees (the chain must come back) and against refusals (class starttls,
// with the refusal in the message).
func TestStartTLSFakes(t *testing.T) {
	t.Parallel()
	chain := testpki.NewChain(t, testpki.Options{})
	serverTLS := epServerConfig(chain.Leaf, chain.Intermediate)

	smtpGreeting := epSay(epLines("220-mail.test ESMTP certwatch fake", "220 no UCE"))
	smtpEHLO := epSay(epLines("250-mail.test greets certwatch", "250-PIPELINING", "250-SIZE 10240000", "250-STARTTLS", "250 8BITMIME"))
	errPkt := append([]byte{0xff, 0x10, 0x04, '#'}, "08004Too many connections"...)

	cases := []struct {
		name     string
		protocol string
		dialogue epDialogue
		class    source.Class // "" for success
		message  string
	}{
		{"smtp", "smtp", epScript(true, smtpGreeting, epExpect("EHLO "), smtpEHLO, epExpect("STARTTLS"), epSay("220 2.0.0 Ready to start TLS\r\n")), "", ""},
		{"smtp without STARTTLS in EHLO", "smtp", epScript(false, smtpGreeting, epExpect("EHLO "),
			epSay(epLines("250-mail.test", "250-PIPELINING", "250 8BITMIME"))), source.ClassStartTLS, "STARTTLS not among the EHLO extensions"},
		{"smtp STARTTLS answered 454", "smtp", epScript(false, smtpGreeting, epExpect("EHLO "), smtpEHLO, epExpect("STARTTLS"),
			epSay("454 4.7.0 TLS not available due to local problem\r\n")), source.ClassStartTLS, "454 4.7.0"},
		{"smtp greeting 554", "smtp", epScript(false, epSay("554 5.3.2 no service here\r\n")), source.ClassStartTLS, "554 5.3.2"},
		{"smtp EHLO answered 502", "smtp", epScript(false, smtpGreeting, epExpect("EHLO "), epSay("502 5.5.2 no EHLO here\r\n")), source.ClassStartTLS, "502 5.5.2"},

		{"imap", "imap", epScript(true, epSay("* OK [CAPABILITY IMAP4rev1 STARTTLS LOGINDISABLED] fake ready\r\n"), epExpect("a1 STARTTLS"),
			epSay(epLines("* CAPABILITY IMAP4rev1 STARTTLS", "a1 OK Begin TLS negotiation now"))), "", ""},
		{"imap a1 NO", "imap", epScript(false, epSay("* OK fake ready\r\n"), epExpect("a1 STARTTLS"), epSay("a1 NO STARTTLS is disabled\r\n")),
			source.ClassStartTLS, "a1 NO STARTTLS is disabled"},
		{"imap a1 BAD", "imap", epScript(false, epSay("* OK fake ready\r\n"), epExpect("a1 STARTTLS"), epSay("a1 BAD unknown command\r\n")),
			source.ClassStartTLS, "a1 BAD"},
		{"imap BYE greeting", "imap", epScript(false, epSay("* BYE too many connections\r\n")), source.ClassStartTLS, "* BYE"},

		{"pop3", "pop3", epScript(true, epSay("+OK POP3 fake ready\r\n"), epExpect("STLS"), epSay("+OK Begin TLS negotiation\r\n")), "", ""},
		{"pop3 -ERR", "pop3", epScript(false, epSay("+OK POP3 fake ready\r\n"), epExpect("STLS"), epSay("-ERR command not permitted\r\n")),
			source.ClassStartTLS, "-ERR command not permitted"},
		{"pop3 -ERR greeting", "pop3", epScript(false, epSay("-ERR go away\r\n")), source.ClassStartTLS, "-ERR go away"},

		{"ftp", "ftp", epScript(true, epSay(epLines("220-Welcome to the certwatch fake FTP", "220-Second banner line", "220 Ready")), epExpect("AUTH TLS"),
			epSay("234 AUTH TLS successful\r\n")), "", ""},
		{"ftp AUTH TLS answered 502", "ftp", epScript(false, epSay("220 Ready\r\n"), epExpect("AUTH TLS"), epSay("502 Command not implemented\r\n")),
			source.ClassStartTLS, "502 Command not implemented"},
		{"ftp greeting 421", "ftp", epScript(false, epSay("421 Service not available\r\n")), source.ClassStartTLS, "421 Service not available"},

		{"ldap", "ldap", epLDAP(0), "", ""},
		{"ldap resultCode 52 (unavailable)", "ldap", epLDAP(52), source.ClassStartTLS, "LDAP result code 52"},
		{"ldap resultCode 2 (protocolError)", "ldap", epLDAP(2), source.ClassStartTLS, "LDAP result code 2"},
		{"ldap answer that is no ExtendedResponse", "ldap", func(c net.Conn, r *bufio.Reader) (bool, error) {
			if _, err := epReadBER(r); err != nil {
				return false, err
			}
			var b cryptobyte.Builder
			b.AddASN1(cbasn1.SEQUENCE, func(m *cryptobyte.Builder) {
				m.AddASN1Int64(1)
				m.AddASN1OctetString([]byte("what?"))
			})
			_, err := c.Write(b.BytesOrPanic())
			return false, err
		}, source.ClassStartTLS, "not an LDAP ExtendedResponse"},

		{"postgres", "postgres", epPostgres('S'), "", ""},
		{"postgres N", "postgres", epPostgres('N'), source.ClassStartTLS, "answered 'N'"},
		{"postgres E", "postgres", epPostgres('E'), source.ClassStartTLS, "answered 'E'"},

		{"mysql", "mysql", epMySQL(epMySQLGreeting(epMySQLServerCaps|epMySQLSSL), true), "", ""},
		{"mysql without CLIENT_SSL", "mysql", epMySQL(epMySQLGreeting(epMySQLServerCaps), false), source.ClassStartTLS, "does not offer SSL"},
		{"mysql error packet", "mysql", epMySQL(epMySQLPacket(0, errPkt), false), source.ClassStartTLS, "error packet"},
		{"mysql protocol 9", "mysql", epMySQL(epMySQLPacket(0, append([]byte{9}, "4.0\x00"...)), false), source.ClassStartTLS, "unknown handshake protocol 9"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			srv := epFake(t, serverTLS, tc.dialogue)
			p := epProber(t, epYAML("timeout: 5s\nstarttls: "+tc.protocol+"\ntls:\n  server_name: localhost"))
			f, _ := epProbe(p, srv.Addr(), 10*time.Second)
			if tc.class == "" {
				epWantChain(t, f, chain.Leaf, chain.Intermediate)
				if st := srv.state(t); f.TLS.Version != tls.VersionName(st.Version) {
					t.Errorf("Version %q, server %q", f.TLS.Version, tls.VersionName(st.Version))
				}
			} else {
				epWantClass(t, f, tc.class)
				if !strings.Contains(f.Err.Error(), "starttls "+tc.protocol) || !strings.Contains(f.Err.Error(), tc.message) {
					t.Errorf("error %q, want the phase and %q", f.Err, tc.message)
				}
			}
			srv.Close()
			if err := srv.errors(); err != nil {
				t.Errorf("the client broke the protocol: %v", err)
			}
		})
	}
}

// TestStartTLSHostile: servers that misbehave during the plain-text phase
// end the probe with an error, never a hang.
func TestStartTLSHostile(t *testing.T) {
	// Not parallel at the top (see endpoint_test.go): it times the probes.
	cases := []struct {
		name     string
		protocol string
		handle   func(net.Conn)
		timeout  string
		class    source.Class
		message  string
	}{
		{"endless greeting line", "smtp", epEndlessLine, "5s", source.ClassStartTLS, "line longer than"},
		{"endless IMAP greeting line", "imap", epEndlessLine, "5s", source.ClassStartTLS, "line longer than"},
		{"endless continuation lines", "ftp", func(c net.Conn) {
			_ = c.SetDeadline(time.Now().Add(10 * time.Second))
			for {
				if _, err := io.WriteString(c, "220-still greeting you\r\n"); err != nil {
					return
				}
			}
		}, "5s", source.ClassStartTLS, "reply longer than"},
		{"endless untagged IMAP data", "imap", func(c net.Conn) {
			_ = c.SetDeadline(time.Now().Add(10 * time.Second))
			_, _ = io.WriteString(c, "* OK ready\r\n")
			for {
				if _, err := io.WriteString(c, "* 1 EXISTS\r\n"); err != nil {
					return
				}
			}
		}, "5s", source.ClassStartTLS, "reply longer than"},
		{"server hangs up at once", "smtp", func(net.Conn) {}, "5s", source.ClassStartTLS, "connection closed by server"},
		{"silent server", "imap", func(c net.Conn) { _, _ = io.Copy(io.Discard, c) }, "500ms", source.ClassTimeout, "starttls imap"},
		{"greeting then silence", "smtp", func(c net.Conn) {
			_, _ = io.WriteString(c, "220 hello\r\n")
			_, _ = io.Copy(io.Discard, c)
		}, "500ms", source.ClassTimeout, "reading EHLO reply"},
		{"LDAP answer claiming 16 MiB", "ldap", func(c net.Conn) {
			_ = c.SetDeadline(time.Now().Add(10 * time.Second))
			_, _ = epReadBER(bufio.NewReader(c))
			_, _ = c.Write([]byte{0x30, 0x83, 0xff, 0xff, 0xff})
			_, _ = io.Copy(io.Discard, c)
		}, "5s", source.ClassStartTLS, "too long"},
		{"MySQL greeting claiming 16 MiB", "mysql", func(c net.Conn) {
			_, _ = c.Write([]byte{0xff, 0xff, 0xff, 0})
			_, _ = io.Copy(io.Discard, c)
		}, "5s", source.ClassStartTLS, "greeting packet of"},
		{"STARTTLS agreed, then no TLS", "pop3", func(c net.Conn) {
			_ = c.SetDeadline(time.Now().Add(10 * time.Second))
			r := bufio.NewReader(c)
			_, _ = io.WriteString(c, "+OK ready\r\n")
			_, _ = r.ReadString('\n')
			_, _ = io.WriteString(c, "+OK go ahead\r\n")
			_, _ = r.ReadByte()
			_, _ = io.WriteString(c, "-ERR this is not TLS at all\r\n")
		}, "5s", source.ClassHandshake, "TLS handshake"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			srv := epServe(t, tc.handle)
			p := epProber(t, epYAML("timeout: "+tc.timeout+"\nstarttls: "+tc.protocol))
			f, took := epProbe(p, srv.Addr(), 10*time.Second)
			epWantClass(t, f, tc.class)
			if !strings.Contains(f.Err.Error(), tc.message) {
				t.Errorf("error %q does not contain %q", f.Err, tc.message)
			}
			if len(f.Err.Error()) > 1024 {
				t.Errorf("error message of %d bytes: server data is not truncated", len(f.Err.Error()))
			}
			if took > 3*time.Second {
				t.Errorf("took %s, want well under the 5s timeout", took)
			}
		})
	}
}

// TestReadReplyFreeTextLines covers RFC 959 multi-line replies whose middle
// lines are free text, and the "code space" line that ends them.
func TestReadReplyFreeTextLines(t *testing.T) {
	cases := []struct {
		in, code string
		lines    int
		fails    bool
	}{
		{in: "220 ready\r\n", code: "220", lines: 1},
		{in: "220-Welcome\r\n  to the server\r\n220 Ready\r\n", code: "220", lines: 3},
		{in: "220-Welcome\r\n250 not the end\r\n220-still not\r\n220\r\n", code: "220", lines: 4},
		{in: "250-a.example\r\n250-STARTTLS\r\n250 SIZE 1\r\n", code: "250", lines: 3},
		{in: "ab\r\n", fails: true},
		{in: "22x ready\r\n", fails: true},
		{in: "220?ready\r\n", fails: true},
	}
	for _, tc := range cases {
		code, lines, err := endpoint.ReadReplyForTest(bufio.NewReader(strings.NewReader(tc.in)))
		if tc.fails {
			if err == nil {
				t.Errorf("%q: expected an error", tc.in)
			}
			continue
		}
		if err != nil || code != tc.code || len(lines) != tc.lines {
			t.Errorf("%q: got %q, %d lines, %v; want %q, %d lines", tc.in, code, len(lines), err, tc.code, tc.lines)
		}
	}
}
