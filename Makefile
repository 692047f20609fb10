# Shortcuts for the scripts in scripts/.
.PHONY: demo test dev schemathesis bench-api sqlx-prepare
demo:          ; scripts/demo.sh
test:          ; scripts/test.sh
dev:           ; scripts/dev.sh
schemathesis:  ; scripts/schemathesis.sh
bench-api:     ; scripts/bench-api.sh
sqlx-prepare:  ; scripts/sqlx-prepare.sh
