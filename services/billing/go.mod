module github.com/certlife/platform/services/billing

go 1.26.8
