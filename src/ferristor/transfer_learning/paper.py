"""What the paper reports for Fig. 6 (digest §6 [P]): only gaps and transfer counts — the digest
gives no per-dataset accuracies, so none are shown."""
FIG6_SOURCE = "digest §6, Fig. 6 [P]"
FIG6_GAP_CIFAR10_PP = 1.2  # HM-online below FP, CIFAR-100 → CIFAR-10
FIG6_GAP_IMAGENET_PP = (1.8, 7.3)  # HM-online below FP, ImageNet → four fine-grained sets
FIG6_TRANSFERS = (2740, 4550)
FIG6_P, FIG6_K, FIG6_LR = 1.0, 512, 0.1  # digest §6
FIG6_TEXT = ("paper (digest §6): HM-online 1.2 pp below FP on CIFAR-100→CIFAR-10, 1.8–7.3 pp on ImageNet→"
             "Pets/Flowers/Birds/Cars; FP ≈ 4-bit offline; 2,740–4,550 transfers")
