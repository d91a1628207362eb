package split

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/certlife/platform/pkg/app"
)

// SE-10, SPEC §7.1: a service process of split mode is given every
// setting explicitly, and reads back exactly the configuration the
// supervisor prepared — for every field of app.Config, including ones
// added later.
func TestServiceEnvCarriesEveryConfigSetting_SE10(t *testing.T) {
	var want app.Config
	v := reflect.ValueOf(&want).Elem()
	settings := 0
	for i := range v.NumField() {
		f, name := v.Field(i), v.Type().Field(i).Name
		if tag := v.Type().Field(i).Tag.Get("env"); tag == "-" || tag == "" {
			continue // not from the environment (DevMode: the all-in-one's alone)
		}
		settings++
		switch {
		case f.Type() == reflect.TypeOf(time.Duration(0)):
			// Not the default (so it must travel), but a valid value: a
			// few milliseconds off the default — above a long one (minimum
			// bounds), below a short one (maximum bounds).
			d, _ := time.ParseDuration(v.Type().Field(i).Tag.Get("envDefault"))
			step := time.Duration(1+i) * time.Millisecond
			if d >= time.Hour || d <= step {
				d += step
			} else {
				d -= step
			}
			f.SetInt(int64(d))
		case f.Kind() == reflect.String:
			f.SetString("value of " + name + ", with spaces")
		case f.Kind() == reflect.Bool:
			f.SetBool(true)
		case f.Kind() == reflect.Int:
			f.SetInt(int64(7 + i))
		case f.Type() == reflect.TypeOf([]string(nil)):
			f.Set(reflect.ValueOf([]string{"first of " + name, "second"}))
		default:
			t.Fatalf("app.Config.%s is a %s: teach ServiceEnv and this test its format", name, f.Type())
		}
	}
	env := ServiceEnv(want)
	if len(env) != settings {
		t.Fatalf("%d variables for %d settings", len(env), settings)
	}
	for _, kv := range env {
		name, value, _ := strings.Cut(kv, "=")
		t.Setenv(name, value)
	}
	got, err := app.LoadConfig()
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("read back\n%+v\nwant\n%+v", got, want)
	}
}
