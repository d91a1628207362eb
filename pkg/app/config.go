package app

import (
	"errors"
	"fmt"
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
	CAKeyAlgorithm    string        `env:"CA_KEY_ALGORITHM" envDefault:"ecdsa"`
	TermClient        time.Duration `env:"PRODUCT_TERM_CLIENT" envDefault:"8760h"`
	TermServer        time.Duration `env:"PRODUCT_TERM_SERVER" envDefault:"8760h"`
	// TrustedProxies are CIDRs (comma-separated) whose X-Forwarded-For is
	// believed for the client address (SE-3).
	TrustedProxies string `env:"TRUSTED_PROXIES"`
	// Argon2Concurrency bounds argon2id computations at once (SE-7); 0 = the number of CPUs.
	Argon2Concurrency int `env:"ARGON2_CONCURRENCY"`
	// CodeHMACKeyFile holds the key (0600) of the certificate-code HMAC (SE-7).
	CodeHMACKeyFile string `env:"CODE_HMAC_KEY_FILE"`
	// CTLogs are the Certificate Transparency logs server certificates
	// are submitted to (IS-9): "url=base64-public-key[@operator],…".
	// Logs without an operator are each their own operator. Required by
	// an issuer outside dev mode; the all-in-one runs embedded dev logs
	// when it is unset.
	CTLogs string `env:"CT_LOGS"`
	// CTMinSCTs is the fewest SCTs a server certificate carries (IS-9);
	// the browsers' lifetime rule may ask for more (3 beyond 180 days).
	CTMinSCTs int `env:"CT_MIN_SCTS" envDefault:"2"`
	// CTSubmitTimeout bounds one log's submission, its own retries
	// included; a log that has not answered by then is replaced.
	CTSubmitTimeout time.Duration `env:"CT_SUBMIT_TIMEOUT" envDefault:"10s"`
	// CoverageReissueLead: a server certificate whose coverage goes on
	// after it is reissued from this long before its notAfter (IS-4: before
	// its last 30 days).
	CoverageReissueLead time.Duration `env:"COVERAGE_REISSUE_LEAD" envDefault:"720h"`

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
	// CAAIdentities are the issuer domain names this CA recognizes in CAA
	// issue/issuewild records as its own (VA-4; the CPS §4.2 names them).
	// The first also makes the manual flow's CAA accounturi,
	// acct:<customer id>@<identity>.
	CAAIdentities []string `env:"CAA_IDENTITIES" envDefault:"certlife.example" envSeparator:","`
	// ACMEEABRequired: newAccount needs an external account binding (AC-2).
	ACMEEABRequired bool `env:"ACME_EAB_REQUIRED" envDefault:"true"`
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
	// DCVCheckInterval is how often a pending DNS or HTTP domain
	// validation is checked again, until its random value expires.
	DCVCheckInterval time.Duration `env:"DCV_CHECK_INTERVAL" envDefault:"5m"`
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

	// Invoices (BI-4, billing). InvoiceRegistrationNumber is the issuer's
	// qualified invoice registration number, "T" + a 13-digit corporate
	// number; a billing binary refuses to start without a valid one (the
	// dev runners use DevInvoiceRegistrationNumber).
	InvoiceRegistrationNumber string        `env:"INVOICE_REGISTRATION_NUMBER"`
	InvoiceIssuerName         string        `env:"INVOICE_ISSUER_NAME" envDefault:"Certlife K.K."`
	InvoiceBankAccount        string        `env:"INVOICE_BANK_ACCOUNT"`
	InvoicePaymentTerm        time.Duration `env:"INVOICE_PAYMENT_TERM" envDefault:"720h"`

	// HTTP server timeouts (SE-9); see NewServer.
	HTTPReadHeaderTimeout time.Duration `env:"HTTP_READ_HEADER_TIMEOUT" envDefault:"10s"`
	HTTPReadTimeout       time.Duration `env:"HTTP_READ_TIMEOUT" envDefault:"30s"`
	HTTPWriteTimeout      time.Duration `env:"HTTP_WRITE_TIMEOUT" envDefault:"2m"`
	HTTPIdleTimeout       time.Duration `env:"HTTP_IDLE_TIMEOUT" envDefault:"2m"`
	// HTTPHandlerTimeout is the deadline of a request's context: work
	// stuck on an unreachable dependency is cancelled and answered 503.
	HTTPHandlerTimeout time.Duration `env:"HTTP_HANDLER_TIMEOUT" envDefault:"1m"`
	// IdempotencyTTL is how long an Idempotency-Key's first response is
	// kept for replay (SE-6).
	IdempotencyTTL time.Duration `env:"IDEMPOTENCY_TTL" envDefault:"24h"`

	// Failure paths and bounds of the runtime (SE-8, SE-9, EV-2 … EV-4).

	// DBStatementTimeout and DBIdleInTransactionTimeout bound every
	// session of every pool (statement_timeout,
	// idle_in_transaction_session_timeout).
	DBStatementTimeout         time.Duration `env:"DB_STATEMENT_TIMEOUT" envDefault:"30s"`
	DBIdleInTransactionTimeout time.Duration `env:"DB_IDLE_IN_TRANSACTION_TIMEOUT" envDefault:"60s"`
	// OutboxPublishTimeout bounds the wait for JetStream's ack of one
	// outbox publish.
	OutboxPublishTimeout time.Duration `env:"OUTBOX_PUBLISH_TIMEOUT" envDefault:"10s"`
	// TimerWorkers is how many timers of one service fire at once;
	// TimerMaxAttempts failed attempts park a timer.
	TimerWorkers     int `env:"TIMER_WORKERS" envDefault:"4"`
	TimerMaxAttempts int `env:"TIMER_MAX_ATTEMPTS" envDefault:"10"`
	// InboxRetention is how long a handled event's inbox row is kept (at
	// least bus.MinInboxRetention, 1080h); OutboxQuarantineRetention how
	// long a quarantined outbox row is kept for inspection.
	InboxRetention time.Duration `env:"INBOX_RETENTION" envDefault:"1080h"`
	// DeliveryRetention is how long the notifier keeps the log of a
	// message once it was sent or given up (NO-4).
	DeliveryRetention         time.Duration `env:"DELIVERY_RETENTION" envDefault:"2160h"`
	OutboxQuarantineRetention time.Duration `env:"OUTBOX_QUARANTINE_RETENTION" envDefault:"2160h"`
	// RetentionInterval is the pause between two pruning passes of a
	// table; RetentionBatch the most rows one transaction deletes.
	RetentionInterval time.Duration `env:"RETENTION_INTERVAL" envDefault:"1h"`
	RetentionBatch    int           `env:"RETENTION_BATCH" envDefault:"1000"`
}

// DevInvoiceRegistrationNumber is the registration number the dev runners
// (all-in-one, split mode) invoice under when INVOICE_REGISTRATION_NUMBER
// is unset: a valid shape, not a real issuer's.
const DevInvoiceRegistrationNumber = "T7000012050002"

// LoadConfig parses the environment.
func LoadConfig() (Config, error) {
	var c Config
	if err := env.Parse(&c); err != nil {
		return c, err
	}
	return c, c.check()
}

func (c Config) check() error {
	for name, d := range map[string]time.Duration{
		"HTTP_READ_HEADER_TIMEOUT": c.HTTPReadHeaderTimeout, "HTTP_READ_TIMEOUT": c.HTTPReadTimeout,
		"HTTP_WRITE_TIMEOUT": c.HTTPWriteTimeout, "HTTP_IDLE_TIMEOUT": c.HTTPIdleTimeout,
		"HTTP_HANDLER_TIMEOUT": c.HTTPHandlerTimeout, "IDEMPOTENCY_TTL": c.IdempotencyTTL,
	} {
		if d <= 0 {
			return fmt.Errorf("%s must be a positive duration", name)
		}
	}
	// SE-9: a stalled request is cut within 30 s.
	if c.HTTPReadHeaderTimeout > MaxReadTimeout || c.HTTPReadTimeout > MaxReadTimeout {
		return fmt.Errorf("HTTP_READ_HEADER_TIMEOUT and HTTP_READ_TIMEOUT may be at most %s", MaxReadTimeout)
	}
	if c.HTTPHandlerTimeout >= c.HTTPWriteTimeout {
		return errors.New("HTTP_HANDLER_TIMEOUT must be shorter than HTTP_WRITE_TIMEOUT, or its 503 could not be written")
	}
	return nil
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
		slog.String("ca_key_algorithm", c.CAKeyAlgorithm),
		slog.String("ct_logs", c.CTLogs),
		slog.Int("ct_min_scts", c.CTMinSCTs),
		slog.Duration("ct_submit_timeout", c.CTSubmitTimeout),
		slog.Duration("coverage_reissue_lead", c.CoverageReissueLead),
		slog.Bool("dev_mode", c.DevMode),
		slog.String("invoice_registration_number", c.InvoiceRegistrationNumber),
		slog.Duration("product_term_client", c.TermClient),
		slog.Duration("product_term_server", c.TermServer),
		slog.String("trusted_proxies", c.TrustedProxies),
		slog.Int("argon2_concurrency", c.Argon2Concurrency),
		slog.String("code_hmac_key_file", c.CodeHMACKeyFile),
		slog.String("session_private_key_file", c.SessionPrivateKeyFile),
		slog.String("public_url", c.PublicURL),
		slog.Any("caa_identities", c.CAAIdentities),
		slog.Bool("acme_eab_required", c.ACMEEABRequired),
		slog.Int("mpic_perspectives", c.MPICPerspectives),
		slog.Int("mpic_quorum_allowed_failures", c.MPICQuorumAllowedFailures),
		slog.String("mpic_agents", c.MPICAgents),
		slog.Duration("mpic_timeout", c.MPICTimeout),
		slog.Duration("dcv_timeout", c.DCVTimeout),
		slog.Duration("dcv_check_interval", c.DCVCheckInterval),
		slog.Bool("dev_mode", c.DevMode),
		slog.Duration("http_read_header_timeout", c.HTTPReadHeaderTimeout),
		slog.Duration("http_read_timeout", c.HTTPReadTimeout),
		slog.Duration("http_write_timeout", c.HTTPWriteTimeout),
		slog.Duration("http_idle_timeout", c.HTTPIdleTimeout),
		slog.Duration("http_handler_timeout", c.HTTPHandlerTimeout),
		slog.Duration("idempotency_ttl", c.IdempotencyTTL),
		slog.Duration("db_statement_timeout", c.DBStatementTimeout),
		slog.Duration("db_idle_in_transaction_timeout", c.DBIdleInTransactionTimeout),
		slog.Duration("outbox_publish_timeout", c.OutboxPublishTimeout),
		slog.Int("timer_workers", c.TimerWorkers),
		slog.Int("timer_max_attempts", c.TimerMaxAttempts),
		slog.Duration("inbox_retention", c.InboxRetention),
		slog.Duration("delivery_retention", c.DeliveryRetention),
		slog.Duration("outbox_quarantine_retention", c.OutboxQuarantineRetention),
		slog.Duration("retention_interval", c.RetentionInterval),
		slog.Int("retention_batch", c.RetentionBatch),
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
