package api

import (
	"encoding/json"
	"slices"
	"testing"

	"github.com/certlife/platform/pkg/openapi"
	"github.com/certlife/platform/services/notifier/internal/domain"
)

// NO-4: the OpenAPI document lists exactly the reasons the delivery log
// filters by.
func TestDeliveryReasonsDocumented_NO4(t *testing.T) {
	var doc struct {
		Components struct {
			Schemas map[string]struct {
				Enum []string `json:"enum"`
			} `json:"schemas"`
		} `json:"components"`
	}
	if err := json.Unmarshal(openapi.Document(), &doc); err != nil {
		t.Fatal(err)
	}
	got := slices.Clone(doc.Components.Schemas["DeliveryReason"].Enum)
	want := slices.Clone(domain.Reasons)
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Fatalf("OpenAPI DeliveryReason %v, domain.Reasons %v", got, want)
	}
}
