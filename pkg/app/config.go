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

	// Platform-specific settings beyond SPEC §7.1.

	// NotifierPublicKey (base64, X25519) seals certificate codes for the
	// notifier; NotifierPrivateKeyFile (0600) opens them.
	NotifierPublicKey      string `env:"NOTIFIER_PUBLIC_KEY"`
	NotifierPrivateKeyFile string `env:"NOTIFIER_PRIVATE_KEY_FILE"`
	// CADir holds the CA certificates and keys (0600) of the issuer.
	CADir string `env:"CA_DIR"`
	// PublicURL is where the API is reached from outside (CRL and AIA URLs, mail links).
	PublicURL string `env:"PUBLIC_URL"`
	// MailFrom is the sender of every e-mail.
	MailFrom string `env:"MAIL_FROM" envDefault:"Certlife CA <no-reply@certlife.example>"`
	// CAAIdentities are the issuer domain names this CA recognizes in CAA
	// issue/issuewild records as its own (VA-4; the CPS §4.2 names them).
	// The first also makes the manual flow's CAA accounturi,
	// acct:<customer id>@<identity>.
	CAAIdentities []string `env:"CAA_IDENTITIES" envDefault:"certlife.example" envSeparator:","`
	// MPICPerspectives and MPICQuorumAllowedFailures are SPEC §7.1's; a
	// configuration weaker than TLS BR 3.2.2.9 is refused (VA-7).
	MPICPerspectives          int `env:"MPIC_PERSPECTIVES" envDefault:"5"`
	MPICQuorumAllowedFailures int `env:"MPIC_QUORUM_ALLOWED_FAILURES" envDefault:"1"`
	// MPICAgents are the remote perspectives, "name@region,…": each a
	// validation-agent answering on rpc.validation.agent.<name>.check.
	MPICAgents string `env:"MPIC_AGENTS"`
	// MPICTimeout is how long the remote perspectives are waited for; one
	// that has not answered by then does not corroborate.
	MPICTimeout time.Duration `env:"MPIC_TIMEOUT" envDefault:"15s"`
	// DCVTimeout bounds one check (all its lookups and fetches) at a
	// perspective.
	DCVTimeout time.Duration `env:"DCV_TIMEOUT" envDefault:"10s"`
	// NatsReplicas is the replica count of the streams (3 in production).
	NatsReplicas int `env:"NATS_REPLICAS" envDefault:"1"`
	// LogLevel is debug, info, warn or error.
	LogLevel string `env:"LOG_LEVEL" envDefault:"info"`

	// DevMode is set by the all-in-one runner only, never from the
	// environment: it allows the development conveniences of SE-10 that a
	// service cannot provide for itself (the issuer's throwaway CA). A
	// service binary (app.Main) never has it, so a missing CA, SMTP server
	// or secret stops its start instead.
	DevMode bool `env:"-"`
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
		slog.String("public_url", c.PublicURL),
		slog.Any("caa_identities", c.CAAIdentities),
		slog.Int("mpic_perspectives", c.MPICPerspectives),
		slog.Int("mpic_quorum_allowed_failures", c.MPICQuorumAllowedFailures),
		slog.String("mpic_agents", c.MPICAgents),
		slog.Duration("mpic_timeout", c.MPICTimeout),
		slog.Duration("dcv_timeout", c.DCVTimeout),
		slog.Bool("dev_mode", c.DevMode),
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
