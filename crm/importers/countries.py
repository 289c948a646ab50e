"""English country names that shop exports use instead of ISO 3166-1 alpha-2 codes."""

COUNTRY_CODES = {
    "australia": "AU", "austria": "AT", "bahrain": "BH", "belgium": "BE", "brazil": "BR", "bulgaria": "BG",
    "canada": "CA", "channel islands": "JE", "china": "CN", "croatia": "HR", "cyprus": "CY",
    "czech republic": "CZ", "czechia": "CZ", "denmark": "DK", "eire": "IE", "estonia": "EE", "finland": "FI",
    "france": "FR", "germany": "DE", "greece": "GR", "hong kong": "HK", "hungary": "HU", "iceland": "IS",
    "india": "IN", "ireland": "IE", "israel": "IL", "italy": "IT", "japan": "JP", "korea": "KR", "latvia": "LV",
    "lebanon": "LB", "lithuania": "LT", "luxembourg": "LU", "malta": "MT", "mexico": "MX", "netherlands": "NL",
    "the netherlands": "NL", "new zealand": "NZ", "nigeria": "NG", "norway": "NO", "poland": "PL",
    "portugal": "PT", "romania": "RO", "rsa": "ZA", "south africa": "ZA", "saudi arabia": "SA",
    "singapore": "SG", "slovakia": "SK", "slovenia": "SI", "spain": "ES", "sweden": "SE", "switzerland": "CH",
    "thailand": "TH", "turkey": "TR", "united arab emirates": "AE", "uae": "AE", "united kingdom": "GB",
    "uk": "GB", "great britain": "GB", "england": "GB", "scotland": "GB", "wales": "GB", "northern ireland": "GB",
    "united states": "US", "united states of america": "US", "usa": "US", "west indies": "",
}
