"""Realistic synthetic health archives of Zhengzhou residents, for tests and benchmarks.

Deterministic for a given ``seed`` (pregnancy due dates are relative to today, so they move with
the calendar). Every row passes ``validation.validate_archive``: national IDs carry a Zhengzhou
district code, the birth date, a sex-matching sequence and a correct check character; phones are
unique mainland mobiles; conditions come with the medications that usually treat them.
No real person is described.
"""

from __future__ import annotations

import json
import random
from datetime import date, datetime, timedelta, timezone as dt_timezone
from typing import Any, Iterator

from health_records.validation import national_id_check_digit

DISTRICTS = (
    "410102", "410103", "410104", "410105", "410106", "410108",  # 中原 二七 管城 金水 上街 惠济
    "410122", "410181", "410182", "410183", "410184", "410185",  # 中牟 巩义 荥阳 新密 新郑 登封
)
SURNAMES = (
    "王", "李", "张", "刘", "陈", "杨", "黄", "赵", "吴", "周", "徐", "孙", "马", "朱", "胡", "郭", "何", "高",
    "林", "罗", "郑", "梁", "谢", "宋", "唐", "许", "韩", "冯", "邓", "曹", "彭", "曾", "肖", "田", "董", "袁",
    "潘", "于", "蒋", "蔡", "余", "杜", "叶", "程", "苏", "魏", "吕", "丁", "任", "沈", "姚", "卢", "姜", "崔",
)
GIVEN_MALE = "伟强磊军勇杰涛斌超明刚平辉鹏华飞鑫波宇浩凯健俊帆帅旭宁龙林欢阳建国志峰亮成"
GIVEN_FEMALE = "芳娜敏静丽艳娟霞秀英玲桂兰梅琳雪颖婷倩洁慧燕萍红莉佳欣悦晶蕾琴云丹"
ALLERGENS = (
    ("青霉素", ("皮疹", "荨麻疹", "过敏性休克", "呼吸困难"), 30),
    ("头孢类抗生素", ("皮疹", "瘙痒"), 12),
    ("磺胺类药物", ("皮疹", "发热"), 6),
    ("阿司匹林", ("哮喘发作", "荨麻疹"), 5),
    ("碘造影剂", ("恶心呕吐", "荨麻疹", "过敏性休克"), 4),
    ("花粉", ("鼻炎", "哮喘发作"), 10),
    ("海鲜", ("荨麻疹", "血管性水肿"), 9),
    ("花生", ("血管性水肿", "过敏性休克"), 4),
    ("鸡蛋", ("皮疹",), 3),
    ("乳胶", ("接触性皮炎",), 2),
    ("布洛芬", ("胃痛", "皮疹"), 3),
)
# condition, minimum age, weight, medications [(name, dose)]
CONDITIONS = (
    ("高血压", 35, 30, (("氨氯地平片", "5mg 每日一次"), ("缬沙坦胶囊", "80mg 每日一次"))),
    ("2型糖尿病", 35, 14, (("二甲双胍片", "500mg 每日两次"), ("胰岛素 (门冬胰岛素)", "餐前皮下注射"))),
    ("冠心病", 45, 10, (("阿司匹林肠溶片", "100mg 每日一次"), ("阿托伐他汀钙片", "20mg 每晚一次"))),
    ("心房颤动", 55, 4, (("华法林钠片", "3mg 每日一次"), ("利伐沙班片", "15mg 每日一次"))),
    ("慢性阻塞性肺疾病", 50, 5, (("噻托溴铵吸入粉雾剂", "18μg 每日一次"),)),
    ("支气管哮喘", 5, 5, (("沙丁胺醇气雾剂", "按需吸入"), ("布地奈德福莫特罗粉吸入剂", "每日两次"))),
    ("脑卒中后遗症", 50, 4, (("氯吡格雷片", "75mg 每日一次"),)),
    ("慢性肾脏病", 40, 3, (("碳酸钙片", "每日三次"),)),
    ("癫痫", 5, 2, (("丙戊酸钠缓释片", "500mg 每日两次"),)),
    ("甲状腺功能减退", 20, 4, (("左甲状腺素钠片", "50μg 每日一次"),)),
    ("慢性心力衰竭", 55, 3, (("呋塞米片", "20mg 每日一次"), ("美托洛尔缓释片", "47.5mg 每日一次"))),
)
DEVICES = {
    "冠心病": ("冠状动脉支架",),
    "心房颤动": ("心脏起搏器",),
    "慢性心力衰竭": ("植入式心律转复除颤器 (ICD)",),
    "2型糖尿病": ("胰岛素泵",),
}
SURGERIES = ("阑尾切除术", "胆囊切除术", "剖宫产", "白内障手术", "髋关节置换术", "冠状动脉支架植入术", "甲状腺部分切除术", "疝修补术")
RELATIONS_ADULT = ("配偶", "儿子", "女儿", "兄弟", "姐妹")
RELATIONS_CHILD = ("父亲", "母亲")
MOBILE_PREFIXES = ("130", "131", "132", "133", "135", "136", "137", "138", "139", "150", "151", "152", "155",
                   "156", "157", "158", "159", "166", "176", "177", "180", "181", "182", "185", "186", "187",
                   "188", "189", "191", "198", "199")
BLOOD = (("A", 28), ("B", 32), ("O", 30), ("AB", 10))
BIRTH_FROM = date(1930, 1, 1)
BIRTH_TO = date(2024, 12, 31)
VERIFIED_FROM = datetime(2024, 1, 1, tzinfo=dt_timezone.utc)


def national_id(district: str, born: date, sequence: int) -> str:
    first17 = f"{district}{born:%Y%m%d}{sequence:03d}"
    return first17 + national_id_check_digit(first17)


class Generator:
    def __init__(self, seed: int = 0):
        self.rng = random.Random(seed)
        self.used_ids: set[str] = set()
        self.index = 0
        self.phone_offset = self.rng.randrange(10**8)

    def _phone(self, unique: bool) -> str:
        rng = self.rng
        if unique:
            # 7919 is coprime with 10^8, so the suffixes of the first 10^8 archives never repeat.
            suffix = (self.index * 7919 + self.phone_offset) % 10**8
            return f"{rng.choice(MOBILE_PREFIXES)}{suffix:08d}"
        return f"{rng.choice(MOBILE_PREFIXES)}{rng.randrange(10**8):08d}"

    def _name(self, sex: str) -> str:
        pool = GIVEN_MALE if sex == "male" else GIVEN_FEMALE
        given = "".join(self.rng.choice(pool) for _ in range(self.rng.choice((1, 2, 2, 2))))
        return self.rng.choice(SURNAMES) + given

    def archive(self) -> dict[str, Any]:
        rng = self.rng
        self.index += 1
        sex = rng.choice(("male", "female"))
        born = BIRTH_FROM + timedelta(days=rng.randrange((BIRTH_TO - BIRTH_FROM).days))
        while True:
            sequence = rng.randrange(500) * 2 + (1 if sex == "male" else 0)
            nid = national_id(rng.choice(DISTRICTS), born, sequence)
            if nid not in self.used_ids:
                self.used_ids.add(nid)
                break
        age = (date.today() - born).days // 365
        abo = rng.choices([b for b, _ in BLOOD], weights=[w for _, w in BLOOD])[0]
        rh = "negative" if rng.random() < 0.004 else "positive"
        if rng.random() < 0.05:
            abo, rh = "unknown", "unknown"

        allergies = []
        if rng.random() < 0.22:
            picks = rng.choices(ALLERGENS, weights=[w for *_, w in ALLERGENS], k=rng.choice((1, 1, 1, 2)))
            for substance, reactions, _ in {p[0]: p for p in picks}.values():
                reaction = rng.choice(reactions)
                severity = "severe" if reaction in ("过敏性休克", "血管性水肿", "呼吸困难") else rng.choice(("mild", "moderate"))
                allergies.append({"substance": substance, "reaction": reaction, "severity": severity})

        conditions, medications, devices = [], [], []
        chance = 0.05 if age < 30 else 0.25 if age < 50 else 0.55 if age < 70 else 0.75
        if rng.random() < chance:
            eligible = [c for c in CONDITIONS if age >= c[1]]
            if eligible:
                count = rng.choice((1, 1, 2, 2, 3)) if age >= 50 else 1
                for name, _, _, meds in {c[0]: c for c in rng.choices(eligible, weights=[c[2] for c in eligible], k=count)}.values():
                    conditions.append(name)
                    for med_name, dose in rng.sample(meds, k=rng.randint(1, len(meds))):
                        medications.append({"name": med_name, "dose": dose})
                    if name in DEVICES and rng.random() < 0.3:
                        devices.append(rng.choice(DEVICES[name]))

        surgeries = []
        if age > 18 and rng.random() < 0.15:
            for name in rng.sample(SURGERIES, k=rng.choice((1, 1, 2))):
                if name == "剖宫产" and sex != "female":
                    continue
                low = max(born.year + 18, 1960)
                high = max(low, date.today().year - 1)
                surgeries.append({"name": name, "year": rng.randint(low, high)})

        pregnancy = None
        if sex == "female" and 20 <= age <= 42 and rng.random() < 0.04:
            pregnancy = {"status": "pregnant", "due_date": (date.today() + timedelta(days=rng.randint(10, 270))).isoformat()}

        relations = RELATIONS_CHILD if age < 18 else RELATIONS_ADULT
        contacts = [
            {"name": self._name(rng.choice(("male", "female"))), "relation": rng.choice(relations), "phone": self._phone(False)}
            for _ in range(rng.choice((1, 1, 2)))
        ]
        doctor = None
        if rng.random() < 0.6:
            doctor = {"name": rng.choice(SURNAMES) + "医生", "phone": f"0371-6{rng.randrange(10**7):07d}"}
        directives = "拒绝气管插管 (DNR)" if age > 75 and rng.random() < 0.05 else ""
        notes = rng.choice(("", "", "", "", "独居", "听力障碍，请大声说话", "家中有宠物犬", "住6楼，无电梯"))
        verified = VERIFIED_FROM + timedelta(seconds=rng.randrange(365 * 86400))
        return {
            "name": self._name(sex),
            "sex": sex,
            "date_of_birth": born.isoformat(),
            "national_id": nid,
            "phone": self._phone(True),
            "blood_type": {"abo": abo, "rh": rh},
            "allergies": allergies,
            "chronic_conditions": conditions,
            "medications": medications,
            "past_surgeries": surgeries,
            "implanted_devices": devices,
            "pregnancy": pregnancy,
            "emergency_contacts": contacts,
            "family_doctor": doctor,
            "advance_directives": directives,
            "notes": notes,
            "consent_share_with_120": rng.random() < 0.7,
            "verified_at": verified.isoformat().replace("+00:00", "Z"),
        }


def archives(n: int, *, seed: int = 0) -> Iterator[dict[str, Any]]:
    generator = Generator(seed)
    for _ in range(n):
        yield generator.archive()


def write_jsonl(path, n: int, *, seed: int = 0, progress=None) -> int:
    with open(path, "w", encoding="utf-8") as out:
        for count, row in enumerate(archives(n, seed=seed), start=1):
            out.write(json.dumps(row, ensure_ascii=False, separators=(",", ":")))
            out.write("\n")
            if progress and count % 10000 == 0:
                progress(10000)
    if progress:
        progress(n % 10000)
    return n
