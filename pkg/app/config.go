package app

import (
	"log/slog"
	"time"

	"github.com/caarlos0/env/v11"
)

// Config is read from the environment; the names are binding (SPEC §7.1)
// and mean the same in every service and in the all-in-one runner.
type Config struct {
	DatabaseURL       string        `env:"DATABASE_URL"`
	NatsURL           string        `env:"NATS_URL"`
	HTTPAddr          string        `env:"HTTP_ADDR" envDefault:"127.0.0.1:8080"`
	DataDir           string        `env:"DATA_DIR" envDefault:"./var"`
	CancelWindow      time.Duration `env:"CANCEL_WINDOW" envDefault:"1h"`
	ReviewAutoApprove bool          `env:"REVIEW_AUTO_APPROVE" envDefault:"false"`
	SMTPAddr          string        `env:"SMTP_ADDR"`
	OpsTokens         string        `env:"OPS_TOKENS"`
	WebhookSecret     string        `env:"WEBHOOK_SECRET"`
	DCVDNSServer      string        `env:"DCV_DNS_SERVER"`
	DCVHTTPPort       int           `env:"DCV_HTTP_PORT" envDefault:"80"`
	ClockControl      bool          `env:"CLOCK_CONTROL" envDefault:"false"`
	TermClient        time.Duration `env:"PRODUCT_TERM_CLIENT" envDefault:"8760h"`
	TermServer        time.Duration `env:"PRODUCT_TERM_SERVER" envDefault:"8760h"`
	// TrustedProxies are CIDRs (comma-separated) whose X-Forwarded-For is
	// believed for the client address (SE-3).
	TrustedProxies string `env:"TRUSTED_PROXIES"`
	// Argon2Concurrency bounds argon2id computations at once (SE-7); 0 = the number of CPUs.
	Argon2Concurrency int `env:"ARGON2_CONCURRENCY"`
	// CodeHMACKeyFile holds the key (0600) of the certificate-code HMAC (SE-7).
	CodeHMACKeyFile string `env:"CODE_HMAC_KEY_FILE"`

	// Platform-specific settings beyond SPEC §7.1.

	// NotifierPublicKey (base64, X25519) seals certificate codes for the
	// notifier; NotifierPrivateKeyFile (0600) opens them.
	NotifierPublicKey      string `env:"NOTIFIER_PUBLIC_KEY"`
	NotifierPrivateKeyFile string `env:"NOTIFIER_PRIVATE_KEY_FILE"`
	// SessionPublicKey (base64 Ed25519; comma-separated while rotating)
	// verifies applicant session tokens in every service;
	// SessionPrivateKeyFile (PKCS#8 PEM, 0600) signs them in intake.
	SessionPublicKey      string `env:"SESSION_PUBLIC_KEY"`
	SessionPrivateKeyFile string `env:"SESSION_PRIVATE_KEY_FILE"`
	// CADir holds the CA certificates and keys (0600) of the issuer.
	CADir string `env:"CA_DIR"`
	// PublicURL is where the API is reached from outside (CRL and AIA URLs, mail links).
	PublicURL string `env:"PUBLIC_URL"`
	// MailFrom is the sender of every e-mail.
	MailFrom string `env:"MAIL_FROM" envDefault:"Certlife CA <no-reply@certlife.example>"`
	// NatsReplicas is the replica count of the streams (3 in production).
	NatsReplicas int `env:"NATS_REPLICAS" envDefault:"1"`
	// LogLevel is debug, info, warn or error.
	LogLevel string `env:"LOG_LEVEL" envDefault:"info"`
}

// LoadConfig parses the environment.
func LoadConfig() (Config, error) {
	var c Config
	err := env.Parse(&c)
	return c, err
}

// LogValue masks secrets so the config can be logged at start.
func (c Config) LogValue() slog.Value {
	mask := func(s string) string {
		if s == "" {
			return ""
		}
		return "*****"
	}
	return slog.GroupValue(
		slog.String("database_url", maskURL(c.DatabaseURL)),
		slog.String("nats_url", c.NatsURL),
		slog.String("http_addr", c.HTTPAddr),
		slog.String("data_dir", c.DataDir),
		slog.Duration("cancel_window", c.CancelWindow),
		slog.Bool("review_auto_approve", c.ReviewAutoApprove),
		slog.String("smtp_addr", c.SMTPAddr),
		slog.String("ops_tokens", mask(c.OpsTokens)),
		slog.String("webhook_secret", mask(c.WebhookSecret)),
		slog.String("dcv_dns_server", c.DCVDNSServer),
		slog.Int("dcv_http_port", c.DCVHTTPPort),
		slog.Bool("clock_control", c.ClockControl),
		slog.Duration("product_term_client", c.TermClient),
		slog.Duration("product_term_server", c.TermServer),
		slog.String("trusted_proxies", c.TrustedProxies),
		slog.Int("argon2_concurrency", c.Argon2Concurrency),
		slog.String("code_hmac_key_file", c.CodeHMACKeyFile),
		slog.String("session_private_key_file", c.SessionPrivateKeyFile),
		slog.String("public_url", c.PublicURL),
	)
}

func maskURL(u string) string {
	// Keep the host visible, hide any password.
	for i := 0; i < len(u); i++ {
		if u[i] == '@' {
			j := i
			for j > 0 && u[j-1] != ':' && u[j-1] != '/' {
				j--
			}
			if j > 0 && u[j-1] == ':' {
				return u[:j] + "*****" + u[i:]
			}
			return u
		}
	}
	return u
}
