"""The Zhengzhou demo (see shared ZHENGZHOU.md). Coordinates are WGS-84 and approximate: hospitals
from public addresses (some to ~1 km), stations placed by district. A demo, not an operational map."""

from __future__ import annotations

HOSPITALS = [
    # code, name_zh, name_en, lat, lon, capabilities (unverified ones kept: they are plausible)
    ("FAHZU-HY", "郑州大学第一附属医院(河医院区)", "First Affiliated Hospital of Zhengzhou University (Heyi campus)", 34.7545, 113.6420, ["tertiary", "stroke", "chest_pain", "trauma", "pci"]),
    ("FAHZU-ZD", "郑州大学第一附属医院(郑东院区)", "First Affiliated Hospital of Zhengzhou University (Zhengdong campus)", 34.8100, 113.7600, ["tertiary", "general_ed"]),
    ("HPPH", "河南省人民医院", "Henan Provincial People's Hospital", 34.7725, 113.6935, ["tertiary", "chest_pain", "pci", "stroke"]),
    ("FUWAI-CC", "华中阜外医院", "Central China Fuwai Hospital", 34.785344, 113.850611, ["cardiac", "chest_pain", "pci"]),
    ("HCH-E", "河南省儿童医院(东区)", "Henan Children's Hospital (East)", 34.7775, 113.7465, ["paediatrics", "critical_neonatal"]),
    ("ZZ1PH", "郑州市第一人民医院", "Zhengzhou First People's Hospital", 34.750322, 113.678508, ["stroke", "chest_pain", "burns"]),
    ("HUCM1", "河南中医药大学第一附属医院", "First Affiliated Hospital of Henan University of Chinese Medicine", 34.7595, 113.6675, ["general_ed"]),
    ("ZZPH", "郑州人民医院", "Zhengzhou People's Hospital", 34.7757, 113.6660, ["general_ed", "critical_maternal"]),
    ("ZZCH", "郑州市中心医院", "Zhengzhou Central Hospital", 34.7540, 113.6100, ["trauma", "general_ed"]),
    ("ZZU5", "郑州大学第五附属医院", "Fifth Affiliated Hospital of Zhengzhou University", 34.7470, 113.6440, ["chest_pain", "general_ed"]),
    ("ZZU3", "郑州大学第三附属医院(河南省妇幼保健院)", "Third Affiliated Hospital of Zhengzhou University (Henan Maternal and Child Health)", 34.7460, 113.6420, ["obstetrics", "critical_maternal", "critical_neonatal"]),
    ("ZZU2", "郑州大学第二附属医院", "Second Affiliated Hospital of Zhengzhou University", 34.7650, 113.6985, ["general_ed"]),
    ("HCHEST", "河南省胸科医院", "Henan Chest Hospital", 34.7710, 113.6880, ["chest_pain", "pci"]),
    ("ZZ7PH", "郑州市第七人民医院(郑州市心血管病医院)", "Zhengzhou Seventh People's Hospital (Cardiovascular Hospital)", 34.7255, 113.6880, ["chest_pain", "pci"]),
    ("HPTCM", "河南省中医院", "Henan Province Hospital of TCM", 34.7950, 113.6650, ["chest_pain"]),
    ("HCANCER", "河南省肿瘤医院", "Henan Cancer Hospital", 34.7700, 113.7080, ["oncology", "general_ed"]),
    ("HUIJI", "郑州市惠济区人民医院", "Huiji District People's Hospital", 34.8650, 113.6300, ["chest_pain", "general_ed"]),
]

# Stations: two in the busiest districts, one or two elsewhere; placed near district centres.
STATIONS = [
    ("JS-1", "金水区急救站一", "Jinshui Station 1", "金水区 Jinshui", 34.7850, 113.7000),
    ("JS-2", "金水区急救站二", "Jinshui Station 2", "金水区 Jinshui", 34.8050, 113.6800),
    ("EQ-1", "二七区急救站一", "Erqi Station 1", "二七区 Erqi", 34.7250, 113.6400),
    ("EQ-2", "二七区急救站二", "Erqi Station 2", "二七区 Erqi", 34.7050, 113.6200),
    ("ZY-1", "中原区急救站一", "Zhongyuan Station 1", "中原区 Zhongyuan", 34.7600, 113.6000),
    ("ZY-2", "中原区急救站二", "Zhongyuan Station 2", "中原区 Zhongyuan", 34.7450, 113.5700),
    ("GC-1", "管城区急救站", "Guancheng Station", "管城回族区 Guancheng", 34.7350, 113.7000),
    ("HJ-1", "惠济区急救站", "Huiji Station", "惠济区 Huiji", 34.8650, 113.6300),
    ("ZD-1", "郑东新区急救站一", "Zhengdong Station 1", "郑东新区 Zhengdong", 34.7750, 113.7650),
    ("ZD-2", "郑东新区急救站二", "Zhengdong Station 2", "郑东新区 Zhengdong", 34.8000, 113.7900),
    ("GX-1", "高新区急救站", "High-tech Zone Station", "高新区 High-tech zone", 34.8050, 113.5450),
    ("JK-1", "经开区急救站", "Economic Zone Station", "经开区 Economic development zone", 34.7100, 113.7450),
    ("HKG-1", "航空港区急救站", "Airport Zone Station", "航空港区 Airport zone", 34.5200, 113.8400),
]

UNITS_PER_STATION = 4
DISPATCHERS = ["dispatcher1"]
# A shift supervisor (a dispatcher who may also declare surge, update units in bulk, read reports).
SUPERVISORS = ["supervisor1"]
DEMO_CITIZEN = ("13800138000", "张三 Zhang San")


def call_sign(station_code: str, index: int) -> str:
    return f"ZZ120-{station_code}-{index}"
