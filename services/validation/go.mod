module github.com/certlife/platform/services/validation

go 1.26.8
