package split

import (
	"fmt"
	"reflect"
	"strings"
	"time"

	"github.com/certlife/platform/pkg/app"
)

// ServiceEnv is the configuration every service process is given, as
// environment variables: every field of app.Config that has an env name,
// with the value the supervisor prepared (secrets and key files created
// once, the dev CA, SMTP_ADDR, NATS_URL, DATABASE_URL, PUBLIC_URL …).
// Per-service binaries have no dev conveniences (SE-10), so nothing is
// left to a default that differs between the all-in-one and a service:
// a setting added to app.Config (SESSION_PUBLIC_KEY, CODE_HMAC_KEY_FILE,
// TRUSTED_PROXIES …) is passed on without a change here — fill it in
// runner.DevSecrets if split mode must create it. Each process then gets
// its own HTTP_ADDR and DATA_DIR on top.
func ServiceEnv(cfg app.Config) []string {
	var env []string
	v := reflect.ValueOf(cfg)
	t := v.Type()
	for i := range t.NumField() {
		name, _, _ := strings.Cut(t.Field(i).Tag.Get("env"), ",")
		if name == "" || name == "-" || !t.Field(i).IsExported() {
			continue
		}
		env = append(env, name+"="+format(v.Field(i)))
	}
	return env
}

// format writes a value the way the env parser reads it back.
func format(v reflect.Value) string {
	if d, ok := v.Interface().(time.Duration); ok {
		return d.String()
	}
	switch v.Kind() {
	case reflect.Slice:
		parts := make([]string, v.Len())
		for i := range parts {
			parts[i] = format(v.Index(i))
		}
		return strings.Join(parts, ",")
	case reflect.Map:
		var parts []string
		for _, k := range v.MapKeys() {
			parts = append(parts, format(k)+":"+format(v.MapIndex(k)))
		}
		return strings.Join(parts, ",")
	}
	return fmt.Sprint(v.Interface())
}
