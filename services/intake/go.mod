module github.com/certlife/platform/services/intake

go 1.26.8
