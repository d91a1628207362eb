// Package invoicepdf renders an invoice (events.InvoiceIssued) as a
// printable A4 PDF in Japanese or English: a qualified invoice under
// Japan's invoice system (issuer and registration number, date, lines,
// the total and the consumption tax per rate), with the payment reference
// and how to pay (SV-3, BI-3, BI-4). Billing serves it
// (GET /v1/invoices/{id}.pdf); the notifier attaches it to the invoice mail.
//
// The Japanese font is M PLUS 1 (SIL Open Font License, fonts/OFL.txt),
// embedded in the binary and subset into each PDF by fpdf.
package invoicepdf

import (
	"bytes"
	_ "embed"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/certlife/platform/pkg/events"
	"github.com/go-pdf/fpdf"
)

//go:embed fonts/MPLUS1-Regular.ttf
var fontRegular []byte

const fontFamily = "mplus1"

// jst: invoice dates are Japanese calendar dates.
var jst = time.FixedZone("JST", 9*60*60)

type labels struct {
	title, issuer, regNo, number, issued, due, billTo, currency              string
	desc, qty, unit, amount, rate                                            string
	perRate, subtotalAt, taxAt, subtotal, tax, total, howToPay, reference    string
	payCard, payBank, bankAccount, noBankAccount, honorific, date, qualified string
}

var ja = labels{
	title: "請求書", issuer: "発行者", regNo: "登録番号", number: "請求書番号", issued: "発行日",
	due: "お支払期限", billTo: "ご請求先", currency: "通貨",
	desc: "品目", qty: "数量", unit: "単価", amount: "金額", rate: "税率",
	perRate: "税率別内訳", subtotalAt: "%d%%対象（税抜）", taxAt: "消費税（%d%%）",
	subtotal: "小計（税抜）", tax: "消費税", total: "ご請求金額（税込）",
	howToPay: "お支払方法", reference: "お支払番号",
	payCard:     "クレジットカード：マイページの本請求書からお支払いください。",
	payBank:     "銀行振込：お支払期限までに下記口座へお振込みください。振込依頼人名の前にお支払番号 %s を必ずご入力ください。振込手数料はお客様のご負担となります。",
	bankAccount: "振込先", noBankAccount: "振込先はお問い合わせください。",
	honorific: " 御中", date: "2006年1月2日", qualified: "適格請求書",
}

var en = labels{
	title: "Invoice", issuer: "Issuer", regNo: "Registration number", number: "Invoice number", issued: "Issue date",
	due: "Due date", billTo: "Bill to", currency: "Currency",
	desc: "Description", qty: "Qty", unit: "Unit price", amount: "Amount", rate: "Tax rate",
	perRate: "By tax rate", subtotalAt: "Taxable at %d%% (excl. tax)", taxAt: "Consumption tax (%d%%)",
	subtotal: "Subtotal (excl. tax)", tax: "Consumption tax", total: "Total (incl. tax)",
	howToPay: "How to pay", reference: "Payment reference",
	payCard:     "Card: pay this invoice from My page.",
	payBank:     "Bank transfer: transfer to the account below by the due date, quoting the payment reference %s before the payer name. Transfer fees are borne by the customer.",
	bankAccount: "Bank account", noBankAccount: "Please ask us for the bank account.",
	honorific: "", date: "2 January 2006", qualified: "Qualified invoice",
}

// Render writes inv as an A4 PDF in language "ja" or "en" (anything but
// "ja" is English).
func Render(inv events.InvoiceIssued, language string) ([]byte, error) {
	if len(inv.Lines) == 0 {
		return nil, errors.New("invoicepdf: an invoice without lines")
	}
	if _, ok := CurrencyExponent(inv.Currency); !ok {
		return nil, fmt.Errorf("invoicepdf: unknown currency %q", inv.Currency)
	}
	l := en
	if language == "ja" {
		l = ja
	}
	money := func(v int64) string {
		if inv.Currency == "JPY" && language == "ja" {
			return FormatAmount(v, inv.Currency) + " 円"
		}
		return inv.Currency + " " + FormatAmount(v, inv.Currency)
	}
	date := func(t time.Time) string { return t.In(jst).Format(l.date) }

	pdf := fpdf.New("P", "mm", "A4", "")
	pdf.SetCreationDate(inv.IssuedAt)
	pdf.SetModificationDate(inv.IssuedAt)
	pdf.SetTitle(l.title+" "+inv.Number, true)
	pdf.SetAuthor(inv.IssuerName, true)
	pdf.AddUTF8FontFromBytes(fontFamily, "", fontRegular)
	if err := pdf.Error(); err != nil {
		return nil, fmt.Errorf("invoicepdf: font: %w", err)
	}
	pdf.SetMargins(18, 18, 18)
	pdf.SetAutoPageBreak(true, 18)
	pdf.AddPage()
	const width = 210 - 36

	// Title.
	pdf.SetFont(fontFamily, "", 22)
	pdf.CellFormat(width, 12, l.title, "", 1, "C", false, 0, "")
	pdf.SetFont(fontFamily, "", 9)
	pdf.CellFormat(width, 5, l.qualified, "", 1, "C", false, 0, "")
	pdf.Ln(4)

	// Bill to (left) and the invoice's identity (right).
	top := pdf.GetY()
	pdf.SetFont(fontFamily, "", 9)
	pdf.CellFormat(90, 5, l.billTo, "", 2, "L", false, 0, "")
	pdf.SetFont(fontFamily, "", 13)
	addressee := inv.OrganizationName
	if addressee == "" {
		addressee = inv.Recipient.Name
	}
	if addressee == "" {
		addressee = inv.Recipient.Email
	}
	pdf.MultiCell(90, 7, addressee+l.honorific, "B", "L", false)
	if inv.OrganizationName != "" && inv.Recipient.Name != "" {
		pdf.SetFont(fontFamily, "", 10)
		pdf.MultiCell(90, 5, inv.Recipient.Name, "", "L", false)
	}
	leftBottom := pdf.GetY()

	pdf.SetXY(18+96, top)
	kv := func(k, v string) {
		pdf.SetX(18 + 96)
		pdf.SetFont(fontFamily, "", 9)
		pdf.CellFormat(32, 6, k, "", 0, "L", false, 0, "")
		pdf.SetFont(fontFamily, "", 10)
		pdf.CellFormat(width-96-32, 6, v, "", 1, "L", false, 0, "")
	}
	kv(l.number, inv.Number)
	kv(l.issued, date(inv.IssuedAt))
	kv(l.due, date(inv.DueAt))
	kv(l.reference, inv.PaymentReference)
	kv(l.currency, inv.Currency)
	pdf.Ln(2)
	pdf.SetX(18 + 96)
	pdf.SetFont(fontFamily, "", 9)
	pdf.CellFormat(width-96, 5, l.issuer, "", 2, "L", false, 0, "")
	pdf.SetFont(fontFamily, "", 11)
	pdf.MultiCell(width-96, 6, inv.IssuerName, "", "L", false)
	kv(l.regNo, inv.RegistrationNumber)
	if y := pdf.GetY(); y < leftBottom {
		pdf.SetY(leftBottom)
	}
	pdf.Ln(6)

	// The amount due, large.
	pdf.SetFont(fontFamily, "", 12)
	pdf.SetFillColor(235, 235, 235)
	pdf.CellFormat(60, 11, l.total, "1", 0, "L", true, 0, "")
	pdf.SetFont(fontFamily, "", 16)
	pdf.CellFormat(70, 11, money(inv.Total), "1", 1, "R", false, 0, "")
	pdf.Ln(6)

	// Lines.
	cols := []float64{78, 14, 30, 32, 20}
	pdf.SetFont(fontFamily, "", 9)
	for i, h := range []string{l.desc, l.qty, l.unit, l.amount, l.rate} {
		align := "R"
		if i == 0 {
			align = "L"
		}
		pdf.CellFormat(cols[i], 7, h, "1", 0, align, true, 0, "")
	}
	pdf.Ln(-1)
	pdf.SetFont(fontFamily, "", 10)
	for _, ln := range inv.Lines {
		// A long description shrinks to fit its column rather than spill.
		size := 10.0
		for size > 6 && pdf.GetStringWidth(ln.Description) > cols[0]-2 {
			size -= 0.5
			pdf.SetFont(fontFamily, "", size)
		}
		pdf.CellFormat(cols[0], 7, ln.Description, "1", 0, "L", false, 0, "")
		pdf.SetFont(fontFamily, "", 10)
		pdf.CellFormat(cols[1], 7, strconv.Itoa(ln.Quantity), "1", 0, "R", false, 0, "")
		pdf.CellFormat(cols[2], 7, FormatAmount(ln.UnitPrice, inv.Currency), "1", 0, "R", false, 0, "")
		pdf.CellFormat(cols[3], 7, FormatAmount(ln.Amount, inv.Currency), "1", 0, "R", false, 0, "")
		pdf.CellFormat(cols[4], 7, strconv.Itoa(ln.TaxRate)+"%", "1", 1, "R", false, 0, "")
	}
	pdf.Ln(4)

	// Totals per tax rate (computed once per rate per invoice), then the sums.
	sum := func(k, v string) {
		pdf.SetX(18 + width - 110)
		pdf.CellFormat(70, 7, k, "1", 0, "L", false, 0, "")
		pdf.CellFormat(40, 7, v, "1", 1, "R", false, 0, "")
	}
	pdf.SetFont(fontFamily, "", 9)
	pdf.SetX(18 + width - 110)
	pdf.CellFormat(110, 6, l.perRate, "", 1, "L", false, 0, "")
	pdf.SetFont(fontFamily, "", 10)
	for _, t := range inv.Taxes {
		sum(fmt.Sprintf(l.subtotalAt, t.Rate), money(t.Taxable))
		sum(fmt.Sprintf(l.taxAt, t.Rate), money(t.Tax))
	}
	pdf.Ln(2)
	sum(l.subtotal, money(inv.Subtotal))
	sum(l.tax, money(inv.Tax))
	pdf.SetFont(fontFamily, "", 12)
	sum(l.total, money(inv.Total))
	pdf.Ln(8)

	// How to pay.
	pdf.SetFont(fontFamily, "", 11)
	pdf.CellFormat(width, 7, l.howToPay, "B", 1, "L", false, 0, "")
	pdf.Ln(1)
	pdf.SetFont(fontFamily, "", 10)
	pdf.MultiCell(width, 5.5, l.payCard, "", "L", false)
	pdf.MultiCell(width, 5.5, fmt.Sprintf(l.payBank, inv.PaymentReference), "", "L", false)
	pdf.Ln(1)
	if inv.BankAccount != "" {
		pdf.MultiCell(width, 5.5, l.bankAccount+": "+inv.BankAccount, "", "L", false)
	} else {
		pdf.MultiCell(width, 5.5, l.noBankAccount, "", "L", false)
	}
	pdf.SetFont(fontFamily, "", 10)
	pdf.CellFormat(width, 6, l.reference+": "+inv.PaymentReference, "", 1, "L", false, 0, "")

	var buf bytes.Buffer
	if err := pdf.Output(&buf); err != nil {
		return nil, fmt.Errorf("invoicepdf: %w", err)
	}
	return buf.Bytes(), nil
}
