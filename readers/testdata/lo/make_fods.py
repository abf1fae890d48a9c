#!/usr/bin/env python3
"""Writes the flat-ODS sources of the LibreOffice-made XLSX fixtures.

The .xlsx files beside them are produced by LibreOffice, not by paybatch or
excelize:  soffice --headless --convert-to xlsx --outdir . *.fods *.csv
(see README.md in this directory).
"""
from xml.sax.saxutils import escape

HEAD = '''<?xml version="1.0" encoding="UTF-8"?>
<office:document xmlns:office="urn:oasis:names:tc:opendocument:xmlns:office:1.0"
 xmlns:table="urn:oasis:names:tc:opendocument:xmlns:table:1.0"
 xmlns:text="urn:oasis:names:tc:opendocument:xmlns:text:1.0"
 xmlns:number="urn:oasis:names:tc:opendocument:xmlns:datastyle:1.0"
 xmlns:style="urn:oasis:names:tc:opendocument:xmlns:style:1.0"
 xmlns:fo="urn:oasis:names:tc:opendocument:xmlns:xsl-fo-compatible:1.0"
 office:version="1.2" office:mimetype="application/vnd.oasis.opendocument.spreadsheet">
 <office:automatic-styles>
  <number:date-style style:name="N1"><number:day number:style="long"/><number:text>/</number:text><number:month number:style="long"/><number:text>/</number:text><number:year number:style="long"/></number:date-style>
  <number:number-style style:name="N2"><number:number number:decimal-places="2" number:min-integer-digits="1" number:grouping="true"/></number:number-style>
  <style:style style:name="ce1" style:family="table-cell" style:parent-style-name="Default" style:data-style-name="N1"/>
  <style:style style:name="ce2" style:family="table-cell" style:parent-style-name="Default" style:data-style-name="N2"/>
 </office:automatic-styles>
 <office:body><office:spreadsheet>
'''
TAIL = ''' </office:spreadsheet></office:body>
</office:document>
'''

def cell(v):
    if v is None:
        return '<table:table-cell/>'
    kind, val = v
    if kind == 's':
        return '<table:table-cell office:value-type="string"><text:p>%s</text:p></table:table-cell>' % escape(val)
    if kind == 'n':  # a number cell, shown with 2 decimals and grouping
        return '<table:table-cell table:style-name="ce2" office:value-type="float" office:value="%s"><text:p>%s</text:p></table:table-cell>' % (val, val)
    if kind == 'd':  # a date cell
        return '<table:table-cell table:style-name="ce1" office:value-type="date" office:date-value="%s"><text:p>%s</text:p></table:table-cell>' % (val, val)
    raise ValueError(kind)

def table(name, rows):
    out = ['  <table:table table:name="%s">' % escape(name)]
    for r in rows:
        out.append('   <table:table-row>' + ''.join(cell(c) for c in r) + '</table:table-row>')
    out.append('  </table:table>')
    return '\n'.join(out) + '\n'

def doc(path, tables, null_date=None):
    body = ''
    if null_date:
        body += '  <table:calculation-settings><table:null-date table:date-value="%s"/></table:calculation-settings>\n' % null_date
    body += ''.join(table(n, r) for n, r in tables)
    with open(path, 'w') as f:
        f.write(HEAD + body + TAIL)

S = lambda v: ('s', v)
N = lambda v: ('n', v)
D = lambda v: ('d', v)

# Refunds: blank first row (header is the first non-empty row), numeric
# amounts, text ids with leading zeros, one over-precise amount, a second sheet.
doc('lo_refund.fods', [
    ('Refunds', [
        [],
        [S('Terminal'), S('Transaction Ref'), S('Order Ref'), S('Merchant Txn ID'), S('Amount'), S('Currency'), S('Notes')],
        [S('ABC123'), S('TX8A3F2C'), S('OR7B9E1D'), S('000123'), N('49.99'), S('USD'), S('first')],
        [S('ABC123'), S('TX2E6G8H'), S('OR7B9E1D'), S('000124'), N('1234.5'), S('USD'), None],
        [S('TERM01'), S('TX5F1K2L'), S('OR1A2B3C'), S('000125'), N('1000'), S('JPY'), None],
        [S('TERM01'), S('TX5F1K2M'), S('OR1A2B3C'), S('000126'), N('12.345'), S('KWD'), None],
        [],
        [S('TERM01'), S('TX5F1K2N'), S('OR1A2B3C'), S('000127'), N('49.995'), S('GBP'), S('over-precise')],
        [S('TERM01'), S('TX5F1K2P'), S('OR1A2B3C'), S('000123'), N('0.1'), S('EUR'), S('duplicate id')],
    ]),
    ('Second', [
        [S('Merchant Txn ID'), S('Amount'), S('Currency'), S('Terminal'), S('Transaction Ref'), S('Order Ref')],
        [S('B-1'), N('0.3'), S('EUR'), S('XYZ789'), S('TX000001'), S('OR000001')],
    ]),
])

# Direct Debit payments in a 1904-dated workbook: dates are date cells
# (serials counted from 1904-01-01 in the XLSX), one date typed as UK text.
doc('lo_dd_1904.fods', [
    ('Payments', [
        [S('Mandate'), S('Merchant Txn ID'), S('Amount'), S('Collection Date'), S('Narrative')],
        [S('M01741EJ519Y51P3XGL'), S('dd-0001'), N('25.32'), D('2027-01-15'), S('RENT JAN')],
        [S('M01741EJ519Y51P3XGM'), S('dd-0002'), N('100'), D('2027-02-01'), S('RENT FEB')],
        [S('M01741EJ519Y51P3XGN'), S('dd-0003'), N('7.5'), S('31/03/2027'), None],
        [S('M01741EJ519Y51P3XGP'), S('dd-0004'), N('19.99'), D('2020-01-01'), S('PAST')],
    ]),
], null_date='1904-01-01')
