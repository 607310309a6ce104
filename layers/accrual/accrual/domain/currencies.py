"""The active ISO 4217 currency codes (the standard's list one, as amended up to 2025), so a line in a code that has
the right shape but names no currency (`XYZ`) is refused at the door instead of failing a conversion later.

Kept: fund codes (BOV, CLF, …) and the supranational units (XAF, XOF, XDR, precious metals), which are real codes a
report may carry. Left out: `XTS` (reserved for testing) and `XXX` ("no currency"), which no purchase is made in.
Recently replaced codes that late reports may still name are kept beside their successors: ANG (by XCG), SLL (by
SLE), ZWL (by ZWG). Withdrawn long ago and not kept: HRK, CUC, VEF, MRO, STD, BYR, LTL, LVL, EEK.
"""

from __future__ import annotations

ISO_4217_ACTIVE: frozenset[str] = frozenset(
    """
AED AFN ALL AMD ANG AOA ARS AUD AWG AZN BAM BBD BDT BGN BHD BIF BMD BND BOB BOV BRL BSD BTN BWP BYN BZD CAD CDF
CHE CHF CHW CLF CLP CNY COP COU CRC CUP CVE CZK DJF DKK DOP DZD EGP ERN ETB EUR FJD FKP GBP GEL GHS GIP GMD GNF
GTQ GYD HKD HNL HTG HUF IDR ILS INR IQD IRR ISK JMD JOD JPY KES KGS KHR KMF KPW KRW KWD KYD KZT LAK LBP LKR LRD
LSL LYD MAD MDL MGA MKD MMK MNT MOP MRU MUR MVR MWK MXN MXV MYR MZN NAD NGN NIO NOK NPR NZD OMR PAB PEN PGK PHP
PKR PLN PYG QAR RON RSD RUB RWF SAR SBD SCR SDG SEK SGD SHP SLE SLL SOS SRD SSP STN SVC SYP SZL THB TJS TMT TND
TOP TRY TTD TWD TZS UAH UGX USD USN UYI UYU UYW UZS VED VES VND VUV WST XAF XAG XAU XBA XBB XBC XBD XCD XCG XDR
XOF XPD XPF XPT XSU XUA YER ZAR ZMW ZWG ZWL
""".split()
)

# one name for the same list, as the click and configuration models call it
ISO_4217 = ISO_4217_ACTIVE
