module github.com/certlife/platform/services/notifier

go 1.26.8
